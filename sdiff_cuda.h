/* sdiff_cuda.h - the CUDA backend of sdiff.                         v0.1.0
   MIT license (see the end of this file).

   Do this, in the one file that builds sdiff's implementation:
      #define SDIFF_IMPLEMENTATION
      #include "sdiff.h"
      #include "sdiff_cuda.h"
   sdiff_ctx_create() then runs on the GPU (SDIFF_BACKEND_AUTO or _CUDA).
   Link with -ldl -lm -lpthread. No CUDA headers or libraries are needed to
   build: the driver (libcuda.so.1), NVRTC and cuBLASLt are opened with dlopen
   when a context is created. Without them (or without a GPU) the backend
   reports why and AUTO falls back to the CPU with one log line.

   =========================================================================
   TABLE OF CONTENTS          (grep for the tag to jump there)
   =========================================================================
     1. Manual: what it does, build options, environment ........... below
     2. Declarations ............................................. >>cuda:api
   Implementation (SDIFF_IMPLEMENTATION)
     3. Run-time loading: our own CUDA typedefs, dlopen ....... >>cuda:loader
     4. Backend state, sticky error checks ..................... >>cuda:state
     5. Kernel sources (CUDA C++ strings for NVRTC) .......... >>cuda:kernels
     6. NVRTC: compiling, the cubin disk cache, modules ......... >>cuda:nvrtc
     7. Memory: alloc, upload, download ........................ >>cuda:memory
     8. GEMM through cuBLASLt (linear, conv2d) .................. >>cuda:gemm
     9. Ops ...................................................... >>cuda:ops
    10. Attention (routing: flash, cuBLASLt math path, fallback) >>cuda:attn
    11. CUDA graphs ............................................ >>cuda:graph
    12. Creation, destruction, registration .................... >>cuda:create

   =========================================================================
   1. MANUAL
   =========================================================================
   What runs where
     Activations and weights are fp16 on the GPU (act_dtype = weight_dtype =
     F16), every sum is accumulated in fp32 (group norm statistics in fp64).
     Weights are uploaded straight from the mmapped checkpoint when they are
     F16; F32/BF16 ones are copied raw to the GPU and converted there.
     - linear, conv2d: cuBLASLt GEMMs (fp16 in/out, fp32 compute) with the
       bias in the epilogue and the residual as C (beta = 1); SiLU, GELU and
       QuickGELU run as one fused elementwise kernel after the GEMM (exact
       erf GELU, as the CPU backend and PyTorch compute it; cuBLASLt's GELU
       epilogue is the tanh approximation).
     - conv2d: 1x1 stride-1 convolutions are plain GEMMs. The others are
       implicit GEMMs on tensor cores with bias and residual fused and no
       im2col matrix, channels in 64s: on Hopper, for output rows that tile
       into boxes of 128 or 256 pixels (every SD level, its stride-2
       downsamplers too), a kernel whose TMA copies each K tile of the
       input as one shifted (and at stride s, s-strided) box of the image,
       zeros for the padding, for wgmma consumers, with split-K over a
       thread block cluster for small grids; elsewhere, with enough output
       pixels (48 per SM), a cp.async kernel (wgmma on Hopper, mma.sync
       before). At most 8 output channels (conv_out): a kernel that reads
       each input pixel once per 64-channel chunk, not once per tap, the
       chunks split over a cluster when its tiles are fewer than the SMs.
       At most 80 values a patch (conv_in's 3 x 3 x 4): a kernel that builds
       the patch rows in shared memory. Otherwise an im2col kernel into a backend-owned
       scratch buffer (at most SDIFF_CUDA_IM2COL_MAX bytes, the rows split
       into chunks beyond that) and the cuBLASLt GEMM (tools/PERF.md).
     - upsample_conv2d (SD's upsamplers, large images): a nearest 2x
       upsampling's 3x3 convolution as four 2x2 convolutions of the small
       image with summed weights, one per output phase, on the TMA kernel.
     - group_norm (+ SiLU): where a group of one image fits a block's
       registers (up to 32768 values: SD's UNet below the 64x64 level), one
       block per group holds it there, any GPU. Else on Hopper and later one
       kernel per call where
       the tensor fits in the shared memory of a cluster of up to 8 blocks
       (the UNet, the VAE's two small levels): read once, statistics merged
       across the cluster through distributed shared memory; the cluster
       size and the slices are chosen so the clusters run at once (the
       driver says how many fit). Otherwise (the VAE's large levels, older
       GPUs) a statistics kernel over many blocks (one partial per block and
       group), a finalize kernel that merges them, and an apply kernel.
       layer_norm keeps each row in registers, in a kernel sized for it.
     - attention: sdiff__cuda_attention() routes by head dim. The
       tensor-core flash kernel takes D = 40, 64, 80, 160 (non-causal,
       16-byte aligned, strides multiples of 8). On Hopper, D = 40, 64 and 80
       (SD 1.x's two largest levels, SD 2.x) take a FlashAttention-3-style
       kernel instead: a producer warpgroup (one thread issuing TMA
       copies) fills K/V stages guarded by
       mbarriers, three (two at D = 80) consumer warpgroups run S = Q K^T and O += P V on
       wgmma and take turns (a named-barrier ping-pong) so one's softmax
       overlaps another's matrix products. Other non-causal attention
       (the VAE's one head of 512, odd head dims, unaligned views) takes
       PyTorch's math path: S = Q K^T / sqrt(D) in fp32 and O = P V as
       strided-batched cuBLASLt GEMMs, with a row softmax kernel between;
       S and P go to the scratch buffer (at most SDIFF_CUDA_ATTN_MAX bytes,
       the batch and then the query rows split into chunks beyond that).
       Causal attention (CLIP) and shapes cuBLASLt has no algorithm for go
       to an exact fp32 online-softmax fallback kernel, head dims up to 512.
     - the rest (norms, GEGLU, add, activations, upsample, concat, embed,
       timestep features, lincomb: the sampling loop's scheduler step, CFG
       and input scaling): our own kernels, 16-byte vector loads where sizes
       and alignment allow.
     Everything is issued on one stream, so graph capture (graph_begin /
     graph_end) records a whole denoising step, replayed with graph_launch.
     On Hopper and later our kernels are launched with programmatic
     dependent launch: each opens with pdl_begin() (wait for the previous
     grid, then let the next one launch), so launch latency overlaps the
     previous kernel's tail (a CPU test checks every kernel opens so).
   Synchronisation
     upload and download (and download_image, which turns a decoded image
     into bytes on the GPU and copies those) are synchronous: they wait for
     the stream, copy, and (download) wait again. They fail the backend during graph capture.
     The sampling loop uses neither between steps: its latents stay on the GPU, and it waits on
     events (mark / wait_mark) one step behind the one queued, so the GPU never idles for the host.
   Kernels
     The kernel sources are strings below, compiled by NVRTC on first use for
     the GPU found (sm_90a on compute capability 9.0, else sm_XY; PTX for the
     newest architecture NVRTC knows when the GPU is newer than that), with
     -D specialisations. Compiled code is cached on disk, keyed by a 128-bit
     hash of (source, options, architecture, NVRTC version, cache format).
   Build options (define before including the implementation)
     SDIFF_CUDA_IM2COL_MAX   bytes of im2col scratch (default 64 MiB)
     SDIFF_CUDA_ATTN_MAX     bytes of attention scores and probabilities per
                             GEMM chunk (default 64 MiB; same buffer)
   Environment variables
     SDIFF_CACHE_DIR         cubin cache directory; "off" disables the disk
                             cache. Default $XDG_CACHE_HOME/sdiff, else
                             ~/.cache/sdiff.
     SDIFF_CUDA_WGMMA        "0": on Hopper, use the mma.sync convolution
                             kernels instead of the wgmma ones (for
                             comparisons).
     SDIFF_CUDA_CLUSTERS     "0": no thread-block clusters: GroupNorm in
                             three kernels even where the one-launch cluster
                             kernel applies, and no split-K over clusters in
                             the GEMM and convolutions (Hopper and later; for
                             comparisons and sanitizer runs).
     SDIFF_CUDA_TMA          "0": on Hopper, attention at D = 40, 64, 80 on the
                             mma.sync flash kernel instead of the TMA one, and
                             convolutions on the cp.async kernel or im2col
                             (for comparisons).
     SDIFF_CUDA_PDL          "0": launch kernels without programmatic
                             dependent launch (Hopper and later; for
                             comparisons).
     SDIFF_CUDA_VMM          "0": arenas in separately allocated blocks
                             instead of one growing range of reserved
                             address space (for comparisons).
   Errors
     Every driver, NVRTC and cuBLASLt call is checked; the first failure sets
     the backend's sticky status (SDIFF_ERR_BACKEND, or _OUT_OF_MEMORY) with a
     message naming the call, the file:line and CUDA's error string (a
     kernel launch: the kernel, its grid, block, shared memory and cluster
     size; with CUDA_LAUNCH_BLOCKING=1 that names a kernel that faults). NVRTC
     failures name the kernel and carry NVRTC's whole log (the log callback
     gets all of it).
*/
#ifndef SDIFF_CUDA_H
#define SDIFF_CUDA_H
/* >>cuda:api --------------------------------------------------------------
   No public functions: the backend is reached through sdiff_ctx_create()
   (backend SDIFF_BACKEND_AUTO or SDIFF_BACKEND_CUDA, device = GPU index). */
#endif /* SDIFF_CUDA_H */

#ifdef SDIFF_IMPLEMENTATION
#ifndef SDIFF_CUDA_IMPLEMENTATION_DONE
#define SDIFF_CUDA_IMPLEMENTATION_DONE
#ifndef SDIFF_IMPLEMENTATION_DONE
#  error "sdiff_cuda.h: include sdiff.h (with SDIFF_IMPLEMENTATION defined) before sdiff_cuda.h"
#endif

#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef SDIFF_CUDA_IM2COL_MAX
#  define SDIFF_CUDA_IM2COL_MAX ((size_t)64 << 20)
#endif
#ifndef SDIFF_CUDA_ATTN_MAX
#  define SDIFF_CUDA_ATTN_MAX ((size_t)64 << 20)
#endif

/* >>cuda:loader ============================================================
   Run-time loading. The types and enum values are our own copies of the few
   the public headers (cuda.h, nvrtc.h, cublasLt.h, library_types.h) define,
   so that nothing from the CUDA toolkit is needed at build time. Symbols are
   the versioned ones those headers map the plain names to (cuMemAlloc ->
   cuMemAlloc_v2, ...).
   ========================================================================= */
typedef int CUresult;                     /* CUDA_SUCCESS == 0 */
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;
typedef struct CUevent_st *CUevent;
typedef unsigned long long CUdeviceptr;
#define SDIFF__CUDA_SUCCESS 0
#define SDIFF__CUDA_ERROR_OUT_OF_MEMORY 2
#define SDIFF__CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT 16
#define SDIFF__CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define SDIFF__CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76
#define SDIFF__CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN 97
#define SDIFF__CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES 8
#define SDIFF__CU_STREAM_DEFAULT 0        /* blocking: ordered after the legacy stream */
#define SDIFF__CU_STREAM_CAPTURE_MODE_RELAXED 2
/* cuLaunchKernelEx's config (CUlaunchConfig, CUlaunchAttribute: cuda.h's layout) for
   programmatic dependent launch and thread block clusters. */
typedef struct {
    int id;                                       /* CUlaunchAttributeID    */
    char pad[4];
    union { char bytes[64]; int i; void *align; } value;   /* CUlaunchAttributeValue */
} sdiff__cu_launch_attr;
typedef struct {
    unsigned grid_x, grid_y, grid_z, block_x, block_y, block_z, smem;
    CUstream stream;
    sdiff__cu_launch_attr *attrs;
    unsigned n_attrs;
} sdiff__cu_launch_config;
#define SDIFF__CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION 4   /* value: three unsigned (x, y, z) */
#define SDIFF__CU_EVENT_DISABLE_TIMING 2
#define SDIFF__CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION 6

/* Virtual memory management (the arena's growable range): cuda.h's structs, same layout. */
typedef unsigned long long CUmemGenericAllocationHandle;
typedef struct { int type, id; } sdiff__cu_mem_location;           /* CUmemLocation          */
typedef struct {
    int type, requested_handle_types;                               /* CUmemAllocationProp    */
    sdiff__cu_mem_location location;
    void *win32_handle_meta_data;
    struct { unsigned char compression_type, gpu_direct_rdma_capable; unsigned short usage; unsigned char reserved[4]; } alloc_flags;
} sdiff__cu_mem_prop;
typedef struct { sdiff__cu_mem_location location; int flags; } sdiff__cu_mem_access;   /* CUmemAccessDesc */
#define SDIFF__CU_MEM_ALLOCATION_TYPE_PINNED 1
#define SDIFF__CU_MEM_LOCATION_TYPE_DEVICE 1
#define SDIFF__CU_MEM_ACCESS_FLAGS_PROT_READWRITE 3
#define SDIFF__CU_MEM_ALLOC_GRANULARITY_MINIMUM 0

typedef int nvrtcResult;                  /* NVRTC_SUCCESS == 0 */
typedef struct _nvrtcProgram *nvrtcProgram;

typedef int cublasStatus_t;               /* CUBLAS_STATUS_SUCCESS == 0 */
typedef struct cublasLtContext *cublasLtHandle_t;
typedef struct { uint64_t data[32]; } sdiff__lt_desc_opaque;
typedef sdiff__lt_desc_opaque *cublasLtMatmulDesc_t;
typedef struct { uint64_t data[8]; } sdiff__lt_layout_opaque;
typedef sdiff__lt_layout_opaque *cublasLtMatrixLayout_t;
typedef struct { uint64_t data[8]; } sdiff__lt_pref_opaque;
typedef sdiff__lt_pref_opaque *cublasLtMatmulPreference_t;
typedef struct { uint64_t data[8]; } cublasLtMatmulAlgo_t;
typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;
#define SDIFF__CUDA_R_32F 0
#define SDIFF__CUDA_R_16F 2
#define SDIFF__CUBLAS_COMPUTE_32F 68
#define SDIFF__CUBLAS_OP_N 0
#define SDIFF__CUBLAS_OP_T 1
#define SDIFF__CUBLASLT_MATMUL_DESC_TRANSA 3
#define SDIFF__CUBLASLT_MATMUL_DESC_TRANSB 4
#define SDIFF__CUBLASLT_MATMUL_DESC_EPILOGUE 7
#define SDIFF__CUBLASLT_MATMUL_DESC_BIAS_POINTER 8
#define SDIFF__CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE 26
#define SDIFF__CUBLASLT_EPILOGUE_DEFAULT 1
#define SDIFF__CUBLASLT_EPILOGUE_BIAS 4
#define SDIFF__CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES 1
#define SDIFF__CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES 5
#define SDIFF__CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES 6
#define SDIFF__CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES 7
#define SDIFF__CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES 8
#define SDIFF__CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT 5            /* int32_t */
#define SDIFF__CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET 6   /* int64_t, elements */

/* X(return type, name, symbol, parameters) for every function we use. */
#define SDIFF__CU_FUNCS(X)                                                                                    \
    X(CUresult, cuInit, "cuInit", (unsigned flags))                                                             \
    X(CUresult, cuDriverGetVersion, "cuDriverGetVersion", (int *version))                                        \
    X(CUresult, cuGetErrorString, "cuGetErrorString", (CUresult e, const char **s))                             \
    X(CUresult, cuGetErrorName, "cuGetErrorName", (CUresult e, const char **s))                                 \
    X(CUresult, cuDeviceGetCount, "cuDeviceGetCount", (int *n))                                                 \
    X(CUresult, cuDeviceGet, "cuDeviceGet", (CUdevice * d, int ordinal))                                        \
    X(CUresult, cuDeviceGetName, "cuDeviceGetName", (char *name, int len, CUdevice d))                           \
    X(CUresult, cuDeviceGetAttribute, "cuDeviceGetAttribute", (int *v, int attr, CUdevice d))                    \
    X(CUresult, cuDeviceTotalMem, "cuDeviceTotalMem_v2", (size_t * bytes, CUdevice d))                          \
    X(CUresult, cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", (CUcontext * c, CUdevice d))              \
    X(CUresult, cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", (CUdevice d))                        \
    X(CUresult, cuCtxSetCurrent, "cuCtxSetCurrent", (CUcontext c))                                              \
    X(CUresult, cuStreamCreate, "cuStreamCreate", (CUstream * s, unsigned flags))                               \
    X(CUresult, cuStreamDestroy, "cuStreamDestroy_v2", (CUstream s))                                            \
    X(CUresult, cuStreamSynchronize, "cuStreamSynchronize", (CUstream s))                                       \
    X(CUresult, cuEventCreate, "cuEventCreate", (CUevent * e, unsigned flags))                                  \
    X(CUresult, cuEventRecord, "cuEventRecord", (CUevent e, CUstream s))                                        \
    X(CUresult, cuEventSynchronize, "cuEventSynchronize", (CUevent e))                                          \
    X(CUresult, cuEventDestroy, "cuEventDestroy_v2", (CUevent e))                                               \
    X(CUresult, cuMemAlloc, "cuMemAlloc_v2", (CUdeviceptr * p, size_t bytes))                                   \
    X(CUresult, cuMemFree, "cuMemFree_v2", (CUdeviceptr p))                                                     \
    X(CUresult, cuMemGetAddressRange, "cuMemGetAddressRange_v2", (CUdeviceptr * base, size_t * size, CUdeviceptr p)) \
    X(CUresult, cuMemAddressReserve, "cuMemAddressReserve",                                                     \
      (CUdeviceptr * p, size_t size, size_t align, CUdeviceptr addr, unsigned long long flags))                  \
    X(CUresult, cuMemAddressFree, "cuMemAddressFree", (CUdeviceptr p, size_t size))                             \
    X(CUresult, cuMemGetAllocationGranularity, "cuMemGetAllocationGranularity",                                 \
      (size_t * granularity, const sdiff__cu_mem_prop *prop, int option))                                       \
    X(CUresult, cuMemCreate, "cuMemCreate",                                                                     \
      (CUmemGenericAllocationHandle * h, size_t size, const sdiff__cu_mem_prop *prop, unsigned long long flags)) \
    X(CUresult, cuMemRelease, "cuMemRelease", (CUmemGenericAllocationHandle h))                                 \
    X(CUresult, cuMemMap, "cuMemMap",                                                                           \
      (CUdeviceptr p, size_t size, size_t offset, CUmemGenericAllocationHandle h, unsigned long long flags))     \
    X(CUresult, cuMemUnmap, "cuMemUnmap", (CUdeviceptr p, size_t size))                                         \
    X(CUresult, cuMemSetAccess, "cuMemSetAccess",                                                               \
      (CUdeviceptr p, size_t size, const sdiff__cu_mem_access *desc, size_t count))                             \
    X(CUresult, cuMemcpyHtoD, "cuMemcpyHtoD_v2", (CUdeviceptr dst, const void *src, size_t bytes))              \
    X(CUresult, cuMemcpyDtoH, "cuMemcpyDtoH_v2", (void *dst, CUdeviceptr src, size_t bytes))                    \
    X(CUresult, cuModuleLoadData, "cuModuleLoadData", (CUmodule * m, const void *image))                        \
    X(CUresult, cuModuleUnload, "cuModuleUnload", (CUmodule m))                                                 \
    X(CUresult, cuModuleGetFunction, "cuModuleGetFunction", (CUfunction * f, CUmodule m, const char *name))     \
    X(CUresult, cuFuncSetAttribute, "cuFuncSetAttribute", (CUfunction f, int attr, int value))                  \
    X(CUresult, cuLaunchKernel, "cuLaunchKernel",                                                               \
      (CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,              \
       unsigned shmem, CUstream s, void **params, void **extra))                                                \
    X(CUresult, cuLaunchKernelEx, "cuLaunchKernelEx",                                                           \
      (const sdiff__cu_launch_config *cfg, CUfunction f, void **params, void **extra))                          \
    X(CUresult, cuStreamBeginCapture, "cuStreamBeginCapture_v2", (CUstream s, int mode))                        \
    X(CUresult, cuStreamEndCapture, "cuStreamEndCapture", (CUstream s, CUgraph * g))                            \
    X(CUresult, cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags",                                     \
      (CUgraphExec * e, CUgraph g, unsigned long long flags))                                                   \
    X(CUresult, cuGraphDestroy, "cuGraphDestroy", (CUgraph g))                                                  \
    X(CUresult, cuGraphLaunch, "cuGraphLaunch", (CUgraphExec e, CUstream s))                                    \
    X(CUresult, cuGraphExecDestroy, "cuGraphExecDestroy", (CUgraphExec e))

/* Driver functions sdiff can do without (newer drivers only): NULL when missing. */
#define SDIFF__CU_OPTIONAL_FUNCS(X)                                                                           \
    X(int, cuTensorMapEncodeTiled, "cuTensorMapEncodeTiled",                                                    \
      (void *map, int dtype, unsigned rank, void *addr, const unsigned long long *dims,                         \
       const unsigned long long *strides, const unsigned *box, const unsigned *elem_strides, int interleave,     \
       int swizzle, int l2_promotion, int oob_fill))                                                              \
    X(CUresult, cuOccupancyMaxActiveClusters, "cuOccupancyMaxActiveClusters",                                  \
      (int *n, CUfunction f, const sdiff__cu_launch_config *cfg))

#define SDIFF__NVRTC_FUNCS(X)                                                                                 \
    X(nvrtcResult, nvrtcVersion, "nvrtcVersion", (int *major, int *minor))                                      \
    X(const char *, nvrtcGetErrorString, "nvrtcGetErrorString", (nvrtcResult r))                                \
    X(nvrtcResult, nvrtcGetNumSupportedArchs, "nvrtcGetNumSupportedArchs", (int *n))                            \
    X(nvrtcResult, nvrtcGetSupportedArchs, "nvrtcGetSupportedArchs", (int *archs))                              \
    X(nvrtcResult, nvrtcCreateProgram, "nvrtcCreateProgram",                                                    \
      (nvrtcProgram * p, const char *src, const char *name, int n_headers, const char *const *headers,          \
       const char *const *include_names))                                                                       \
    X(nvrtcResult, nvrtcDestroyProgram, "nvrtcDestroyProgram", (nvrtcProgram * p))                              \
    X(nvrtcResult, nvrtcCompileProgram, "nvrtcCompileProgram", (nvrtcProgram p, int n, const char *const *opts)) \
    X(nvrtcResult, nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize", (nvrtcProgram p, size_t * n))              \
    X(nvrtcResult, nvrtcGetProgramLog, "nvrtcGetProgramLog", (nvrtcProgram p, char *log))                       \
    X(nvrtcResult, nvrtcGetCUBINSize, "nvrtcGetCUBINSize", (nvrtcProgram p, size_t * n))                        \
    X(nvrtcResult, nvrtcGetCUBIN, "nvrtcGetCUBIN", (nvrtcProgram p, char *out))                                 \
    X(nvrtcResult, nvrtcGetPTXSize, "nvrtcGetPTXSize", (nvrtcProgram p, size_t * n))                            \
    X(nvrtcResult, nvrtcGetPTX, "nvrtcGetPTX", (nvrtcProgram p, char *out))

#define SDIFF__LT_FUNCS(X)                                                                                    \
    X(cublasStatus_t, cublasLtCreate, "cublasLtCreate", (cublasLtHandle_t * h))                                 \
    X(cublasStatus_t, cublasLtDestroy, "cublasLtDestroy", (cublasLtHandle_t h))                                 \
    X(size_t, cublasLtGetVersion, "cublasLtGetVersion", (void))                                                 \
    X(const char *, cublasLtGetStatusString, "cublasLtGetStatusString", (cublasStatus_t s))                     \
    X(cublasStatus_t, cublasLtMatmulDescCreate, "cublasLtMatmulDescCreate",                                     \
      (cublasLtMatmulDesc_t * d, int compute, int scale_type))                                                  \
    X(cublasStatus_t, cublasLtMatmulDescDestroy, "cublasLtMatmulDescDestroy", (cublasLtMatmulDesc_t d))         \
    X(cublasStatus_t, cublasLtMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute",                         \
      (cublasLtMatmulDesc_t d, int attr, const void *buf, size_t size))                                         \
    X(cublasStatus_t, cublasLtMatrixLayoutCreate, "cublasLtMatrixLayoutCreate",                                 \
      (cublasLtMatrixLayout_t * l, int type, uint64_t rows, uint64_t cols, int64_t ld))                         \
    X(cublasStatus_t, cublasLtMatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy", (cublasLtMatrixLayout_t l))   \
    X(cublasStatus_t, cublasLtMatrixLayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute",                     \
      (cublasLtMatrixLayout_t l, int attr, const void *buf, size_t size))                                       \
    X(cublasStatus_t, cublasLtMatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate",                         \
      (cublasLtMatmulPreference_t * p))                                                                         \
    X(cublasStatus_t, cublasLtMatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy",                       \
      (cublasLtMatmulPreference_t p))                                                                           \
    X(cublasStatus_t, cublasLtMatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute",             \
      (cublasLtMatmulPreference_t p, int attr, const void *buf, size_t size))                                   \
    X(cublasStatus_t, cublasLtMatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic",                         \
      (cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,          \
       cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t dd, cublasLtMatmulPreference_t p, int requested,        \
       cublasLtMatmulHeuristicResult_t *results, int *n_results))                                               \
    X(cublasStatus_t, cublasLtMatmul, "cublasLtMatmul",                                                         \
      (cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha, const void *a, cublasLtMatrixLayout_t la, \
       const void *b, cublasLtMatrixLayout_t lb, const void *beta, const void *c, cublasLtMatrixLayout_t lc,    \
       void *dd, cublasLtMatrixLayout_t ld, const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_size,         \
       CUstream s))

#define SDIFF__DECL_FN(ret, name, sym, params) ret(*name) params;
/* The three libraries, opened once per process and kept open (closing the
   driver while a context may live is never safe). state: 0 untried, 1 loaded,
   -1 failed with `why`. */
typedef struct sdiff__cuda_libs {
    int cu_state, nvrtc_state, lt_state;
    char cu_why[256], nvrtc_why[256], lt_why[256];
    void *cu_lib, *nvrtc_lib, *lt_lib;
    int nvrtc_major, nvrtc_minor;
    SDIFF__CU_FUNCS(SDIFF__DECL_FN)
    SDIFF__CU_OPTIONAL_FUNCS(SDIFF__DECL_FN)
    SDIFF__NVRTC_FUNCS(SDIFF__DECL_FN)
    SDIFF__LT_FUNCS(SDIFF__DECL_FN)
} sdiff__cuda_libs;
#undef SDIFF__DECL_FN
static sdiff__cuda_libs sdiff__g_cu;
static pthread_mutex_t sdiff__g_cu_mu = PTHREAD_MUTEX_INITIALIZER;

/* dlopen the first of `names` that opens; NULL and `why` when none does. */
SDIFF__PRIVATE void *sdiff__cuda_dlopen(const char *const *names, int n, char *why, size_t why_size) {
    for (int i = 0; i < n; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
    }
    int o = snprintf(why, why_size, "%s not found (tried", names[0]);
    for (int i = 0; i < n && o > 0 && (size_t)o < why_size; i++)
        o += snprintf(why + o, why_size - (size_t)o, " %s", names[i]);
    if (o > 0 && (size_t)o < why_size) snprintf(why + o, why_size - (size_t)o, ")");
    return NULL;
}
/* Resolves one symbol into a function pointer (memcpy: a data pointer
   converts to a function pointer neither in ISO C nor in C++ casts). */
SDIFF__PRIVATE bool sdiff__cuda_sym(void *lib, const char *sym, void *fnptr, size_t fnsize, char *why, size_t why_size) {
    void *p = dlsym(lib, sym);
    if (!p) { snprintf(why, why_size, "symbol %s is missing (library too old?)", sym); return false; }
    memcpy(fnptr, &p, fnsize);
    return true;
}
#define SDIFF__LOAD_FN(ret, name, sym, params)                                                             \
    if (ok) ok = sdiff__cuda_sym(lib, sym, (void *)&L->name, sizeof L->name, why, why_size);

#define SDIFF__LOAD_OPTIONAL_FN(ret, name, sym, params)                                                    \
    {                                                                                                     \
        void *p_ = dlsym(lib, sym);                                                                       \
        memcpy((void *)&L->name, &p_, sizeof L->name);                                                    \
    }

SDIFF__PRIVATE bool sdiff__cuda_load_driver(void) {
    sdiff__cuda_libs *L = &sdiff__g_cu;
    pthread_mutex_lock(&sdiff__g_cu_mu);
    if (L->cu_state == 0) {
        static const char *const names[] = {"libcuda.so.1", "libcuda.so"};
        char *why = L->cu_why;
        const size_t why_size = sizeof L->cu_why;
        void *lib = sdiff__cuda_dlopen(names, 2, why, why_size);
        bool ok = lib != NULL;
        SDIFF__CU_FUNCS(SDIFF__LOAD_FN)
        if (ok) { SDIFF__CU_OPTIONAL_FUNCS(SDIFF__LOAD_OPTIONAL_FN) }
        L->cu_lib = lib;
        L->cu_state = ok ? 1 : -1;
    }
    bool ok = L->cu_state == 1;
    pthread_mutex_unlock(&sdiff__g_cu_mu);
    return ok;
}
SDIFF__PRIVATE bool sdiff__cuda_load_nvrtc(void) {
    sdiff__cuda_libs *L = &sdiff__g_cu;
    pthread_mutex_lock(&sdiff__g_cu_mu);
    if (L->nvrtc_state == 0) {
        static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so",
                                            "/usr/local/cuda/lib64/libnvrtc.so"};
        char *why = L->nvrtc_why;
        const size_t why_size = sizeof L->nvrtc_why;
        void *lib = sdiff__cuda_dlopen(names, 4, why, why_size);
        bool ok = lib != NULL;
        SDIFF__NVRTC_FUNCS(SDIFF__LOAD_FN)
        if (ok && L->nvrtcVersion(&L->nvrtc_major, &L->nvrtc_minor) != 0) {
            snprintf(why, why_size, "nvrtcVersion failed");
            ok = false;
        }
        L->nvrtc_lib = lib;
        L->nvrtc_state = ok ? 1 : -1;
    }
    bool ok = L->nvrtc_state == 1;
    pthread_mutex_unlock(&sdiff__g_cu_mu);
    return ok;
}
SDIFF__PRIVATE bool sdiff__cuda_load_cublaslt(void) {
    sdiff__cuda_libs *L = &sdiff__g_cu;
    pthread_mutex_lock(&sdiff__g_cu_mu);
    if (L->lt_state == 0) {
        static const char *const names[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so",
                                            "/usr/local/cuda/lib64/libcublasLt.so"};
        char *why = L->lt_why;
        const size_t why_size = sizeof L->lt_why;
        void *lib = sdiff__cuda_dlopen(names, 4, why, why_size);
        bool ok = lib != NULL;
        SDIFF__LT_FUNCS(SDIFF__LOAD_FN)
        L->lt_lib = lib;
        L->lt_state = ok ? 1 : -1;
    }
    bool ok = L->lt_state == 1;
    pthread_mutex_unlock(&sdiff__g_cu_mu);
    return ok;
}
#undef SDIFF__LOAD_FN
#undef SDIFF__LOAD_OPTIONAL_FN

/* >>cuda:state =============================================================
   Backend state and the sticky error checks.
   ========================================================================= */
enum { SDIFF__CP_CONVERT, SDIFF__CP_ELEMENTWISE, SDIFF__CP_NORM, SDIFF__CP_IM2COL, SDIFF__CP_ATTN, SDIFF__CP_FLASH,
       SDIFF__CP_FLASH_TMA, SDIFF__CP_CONV, SDIFF__CP_CONV_SM90, SDIFF__CP_CONV_TMA, SDIFF__CP_GEMM_TMA, SDIFF__CP_COUNT };
/* conv2d's routes (sdiff__cuda_conv2d); tests force one with sdiff__cuda.conv_force. */
enum { SDIFF__CONV_AUTO, SDIFF__CONV_TMA, SDIFF__CONV_IMPLICIT, SDIFF__CONV_IM2COL, SDIFF__CONV_FEW };
#define SDIFF__CUDA_MAX_VARIANTS 8
#define SDIFF__CUDA_MAX_FNS 64
#define SDIFF__CUDA_STAGE_BYTES ((size_t)16 << 20)   /* upload/download staging */
#define SDIFF__CUDA_LT_WS_BYTES ((size_t)32 << 20)   /* cuBLASLt workspace      */

/* One cached GEMM shape: descriptors and the algorithm cuBLASLt chose. */
typedef struct sdiff__cuda_gemm_plan {
    int64_t m, n, k, lda;
    int epilogue, beta, align[4];
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} sdiff__cuda_gemm_plan;

/* One cached strided-batched GEMM shape (attention's S = Q K^T and O = P V):
   the whole key is compared with memcmp, so it is zeroed before it is filled. */
typedef struct sdiff__cuda_bgemm_key {
    int64_t m, n, k, lda, ldb, ldc, sa, sb, sc;   /* cuBLASLt's column-major view */
    int32_t transa, transb, ctype, batch, align[4];
} sdiff__cuda_bgemm_key;
typedef struct sdiff__cuda_bgemm_plan {
    sdiff__cuda_bgemm_key key;
    bool usable;                    /* false: cuBLASLt has no algorithm for it */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} sdiff__cuda_bgemm_plan;

/* A loaded kernel; smem: the dynamic shared memory its attribute was raised to (0: the default 48 KB). */
typedef struct sdiff__cuda_fn_entry { int prog, variant; const char *name; CUfunction fn; unsigned smem; } sdiff__cuda_fn_entry;

typedef struct sdiff__cuda {
    sdiff__backend be;              /* first: a sdiff__backend * is a sdiff__cuda * */
    CUdevice dev;
    CUcontext ctx;
    CUstream stream;
    CUevent marks[2];               /* mark / wait_mark (made at the first mark)  */
    int cc_major, cc_minor, n_sm;
    int smem_optin;                 /* the most dynamic shared memory a block may ask for */
    char arch[32], dev_name[128];
    bool code_is_ptx;               /* arch is compute_XY: modules are PTX        */
    bool wgmma;                     /* arch is sm_90a: the wgmma kernels          */
    bool tma;                       /* sm_90a and cuTensorMapEncodeTiled: the TMA attention and convolution kernels */
    int conv_force;                 /* tests: SDIFF__CONV_* route conv2d takes where it applies (0: the library's choice) */
    bool clusters;                  /* arch >= 9.0: thread block clusters (GroupNorm, split-K) */
    bool gn_no_regs;                /* tests, tools: GroupNorm never on group_norm_regs */
    int gn_clusters[9];             /* group_norm_cluster: clusters of cs blocks that fit at once (0: not asked yet) */
    int conv_clusters[9];           /* sdiff_conv2d_fwd_tma's split-K clusters, likewise */
    bool pdl;                       /* 9.0+: launches with programmatic dependent launch */
    bool vmm;                       /* arenas in a growing reserved range (range_reserve) */
    bool capturing;                 /* between graph_begin and graph_end          */
    CUmodule modules[SDIFF__CP_COUNT][SDIFF__CUDA_MAX_VARIANTS];
    sdiff__cuda_fn_entry fns[SDIFF__CUDA_MAX_FNS];
    int n_fns;
    cublasLtHandle_t lt;
    CUdeviceptr lt_ws, stage, scratch, ids, gn;
    size_t scratch_size, ids_size, gn_size;   /* gn: group_norm's statistics and partials */
    CUdeviceptr attn_part, attn_count;        /* the TMA attention's split tails: partials, counters */
    size_t attn_part_size, attn_count_size;
    sdiff__cuda_gemm_plan *plans;
    int n_plans, cap_plans;
    sdiff__cuda_bgemm_plan *bplans;
    int n_bplans, cap_bplans;
    size_t mem_used, mem_peak;      /* device bytes allocated by this backend, now and at most */
    struct sdiff__cuda_range *ranges;   /* the arenas' growable ranges (range_reserve) */
} sdiff__cuda;
#define SDIFF__CUDA(be) ((sdiff__cuda *)(be))

/* The check macros (one generator, as ggml's CUDA_CHECK_GEN): each records
   the expression, file and line in the backend's sticky error and evaluates
   to true when the call succeeded. NVRTC's errors are reported by
   sdiff__cuda_compile, with the program's log. */
SDIFF__PRIVATE const char *sdiff__cu_errstr(CUresult r) {
    const char *name = NULL, *desc = NULL;
    if (sdiff__g_cu.cuGetErrorName) sdiff__g_cu.cuGetErrorName(r, &name);
    if (sdiff__g_cu.cuGetErrorString) sdiff__g_cu.cuGetErrorString(r, &desc);
    static SDIFF__THREAD_LOCAL char buf[256];
    snprintf(buf, sizeof buf, "%s: %s", name ? name : "CUDA error", desc ? desc : "unknown");
    return buf;
}
SDIFF__PRIVATE const char *sdiff__nvrtc_errstr(nvrtcResult r) {
    return sdiff__g_cu.nvrtcGetErrorString ? sdiff__g_cu.nvrtcGetErrorString(r) : "NVRTC error";
}
SDIFF__PRIVATE const char *sdiff__lt_errstr(cublasStatus_t r) {
    return sdiff__g_cu.cublasLtGetStatusString ? sdiff__g_cu.cublasLtGetStatusString(r) : "cuBLASLt error";
}
SDIFF__PRIVATE bool sdiff__cuda_check(sdiff__backend *be, int code, const char *what, const char *expr,
                                      const char *file, int line) {
    if (code == 0) return true;
    sdiff_status st = SDIFF_ERR_BACKEND;
    if (what == NULL) { /* a driver call */
        if (code == SDIFF__CUDA_ERROR_OUT_OF_MEMORY) st = SDIFF_ERR_OUT_OF_MEMORY;
        what = sdiff__cu_errstr((CUresult)code);
    }
    if (be) sdiff__be_fail(be, st, "cuda: %s failed (%s:%d): %s (code %d)", expr, file, line, what, code);
    else sdiff__err(st, "cuda: %s failed (%s:%d): %s (code %d)", expr, file, line, what, code);
    return false;
}
#define SDIFF__CUDA_CHECK_GEN(be, expr, errstr)                                                          \
    sdiff__cuda_check((be), (int)(expr), errstr, #expr, __FILE__, __LINE__)
#define SDIFF__CU(be, expr) SDIFF__CUDA_CHECK_GEN(be, sdiff__g_cu.expr, (const char *)NULL)
#define SDIFF__LT(be, expr) sdiff__cuda_check_lt((be), (int)(sdiff__g_cu.expr), #expr, __FILE__, __LINE__)
SDIFF__PRIVATE bool sdiff__cuda_check_lt(sdiff__backend *be, int code, const char *expr, const char *file, int line) {
    return code == 0 || sdiff__cuda_check(be, code, sdiff__lt_errstr(code), expr, file, line);
}

/* >>cuda:kernels ===========================================================
   Kernel sources, CUDA C++ for NVRTC. Each starts with a comment naming it;
   the prelude is compiled in front of every one. Kernels are extern "C" so
   their names need no lowering.
   ========================================================================= */
static const char sdiff__cuda_src_prelude[] =
    "/* sdiff_prelude: types and helpers every kernel source starts with. No CUDA\n"
    "   headers: halves are handled as 16-bit integers through PTX conversions, so\n"
    "   NVRTC needs no include path. */\n"
    "#include \"mma.cuh\" /* pdl_begin, which every kernel calls first; u32 */\n"
    "typedef unsigned short h16;\n"
    "typedef long long i64;\n"
    "#define SDIFF_NEG_INF __int_as_float(0xff800000)\n"
    "#define GRID_STRIDE(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)\n"
    "__device__ __forceinline__ float h2f(h16 h) { float f; asm(\"cvt.f32.f16 %0, %1;\" : \"=f\"(f) : \"h\"(h)); return f; }\n"
    "__device__ __forceinline__ h16 f2h(float f) { h16 h; asm(\"cvt.rn.f16.f32 %0, %1;\" : \"=h\"(h) : \"f\"(f)); return h; }\n"
    "__device__ __forceinline__ float bf2f(h16 h) { return __uint_as_float(((u32)h) << 16); }\n"
    "__device__ __forceinline__ void unpack8(uint4 v, float *f) {\n"
    "    u32 w[4] = {v.x, v.y, v.z, v.w};\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < 4; i++) { f[2 * i] = h2f((h16)(w[i] & 0xffffu)); f[2 * i + 1] = h2f((h16)(w[i] >> 16)); }\n"
    "}\n"
    "__device__ __forceinline__ uint4 pack8(const float *f) {\n"
    "    u32 w[4];\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < 4; i++) w[i] = (u32)f2h(f[2 * i]) | ((u32)f2h(f[2 * i + 1]) << 16);\n"
    "    uint4 r; r.x = w[0]; r.y = w[1]; r.z = w[2]; r.w = w[3];\n"
    "    return r;\n"
    "}\n"
    "__device__ __forceinline__ uint4 zero4() { uint4 r; r.x = r.y = r.z = r.w = 0u; return r; }\n"
    "/* The activations of sdiff__act: 0 none, 1 SiLU, 2 exact GELU, 3 QuickGELU. The sigmoids use the\n"
    "   hardware exp2 and a fast divide (a few ulp in fp32, far below fp16's rounding; x / inf = 0 at\n"
    "   the far negative end): the IEEE forms cost ~30 instructions an element, which made GroupNorm +\n"
    "   SiLU instruction-bound (tools/PERF.md). */\n"
    "__device__ __forceinline__ float act_f(float x, int act) {\n"
    "    if (act == 1) return __fdividef(x, 1.0f + __expf(-x));\n"
    "    if (act == 2) return gelu_erf(x);\n"
    "    if (act == 3) return __fdividef(x, 1.0f + __expf(-1.702f * x));\n"
    "    return x;\n"
    "}\n"
    "__device__ __forceinline__ float warp_sum(float v) {\n"
    "#pragma unroll\n"
    "    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);\n"
    "    return v;\n"
    "}\n"
    "__device__ __forceinline__ float warp_max(float v) {\n"
    "#pragma unroll\n"
    "    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));\n"
    "    return v;\n"
    "}\n";

static const char sdiff__cuda_src_convert[] =
    "/* sdiff_convert: dtype conversions for upload (F32/BF16 -> F16) and\n"
    "   download (F16/BF16 -> F32, images to bytes). Element by element: the destination of an\n"
    "   upload can be any row of a stacked weight, so only 2-byte alignment holds. */\n"
    "extern \"C\" __global__ void cvt_f32_f16(h16 *d, const float *s, i64 n) {\n"
    "    pdl_begin();\n"
    "    GRID_STRIDE(i, n) d[i] = f2h(s[i]);\n"
    "}\n"
    "extern \"C\" __global__ void cvt_bf16_f16(h16 *d, const h16 *s, i64 n) {\n"
    "    pdl_begin();\n"
    "    GRID_STRIDE(i, n) d[i] = f2h(bf2f(s[i]));\n"
    "}\n"
    "extern \"C\" __global__ void cvt_f16_f32(float *d, const h16 *s, i64 n) {\n"
    "    pdl_begin();\n"
    "    GRID_STRIDE(i, n) d[i] = h2f(s[i]);\n"
    "}\n"
    "extern \"C\" __global__ void cvt_bf16_f32(float *d, const h16 *s, i64 n) {\n"
    "    pdl_begin();\n"
    "    GRID_STRIDE(i, n) d[i] = bf2f(s[i]);\n"
    "}\n"
    "/* download_image: a decoded image (F16, or F32 when is_f32) -> bytes, as sdiff.h's\n"
    "   sdiff__image_byte: x/2 + 0.5 clamped to [0, 1] (NaN to 0), times 255 (rounded on its own, not\n"
    "   fused into anything), rounded half to even. */\n"
    "extern \"C\" __global__ void image_u8(unsigned char *d, const void *s, i64 n, int is_f32) {\n"
    "    pdl_begin();\n"
    "    GRID_STRIDE(i, n) {\n"
    "        const float x = is_f32 ? ((const float *)s)[i] : h2f(((const h16 *)s)[i]);\n"
    "        float v = x * 0.5f + 0.5f;\n"
    "        v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;\n"
    "        d[i] = (unsigned char)__float2int_rn(__fmul_rn(v, 255.0f));\n"
    "    }\n"
    "}\n"
    "/* A convolution weight's rows: s [co][ci][kk] (sdt 0 f32, 1 f16, 2 bf16) -> d [co][kk][ci] fp16. */\n"
    "extern \"C\" __global__ void permute_conv_weight(h16 *d, const void *s, int sdt, i64 co, i64 ci, i64 kk) {\n"
    "    pdl_begin();\n"
    "    GRID_STRIDE(e, co * ci * kk) {\n"
    "        const i64 i = e % ci, k = (e / ci) % kk, o = e / (ci * kk), se = (o * ci + i) * kk + k;\n"
    "        d[e] = sdt == 0 ? f2h(((const float *)s)[se]) : sdt == 1 ? ((const h16 *)s)[se] : f2h(bf2f(((const h16 *)s)[se]));\n"
    "    }\n"
    "}\n";

static const char sdiff__cuda_src_elementwise[] =
    "/* sdiff_elementwise: activate (also the linear epilogue act + residual),\n"
    "   add, geglu, upsample, concat, lincomb, embed, timestep_embedding. Each thread\n"
    "   handles chunks of 8 halves; `vec` says that every chunk is one aligned\n"
    "   16-byte vector (sizes multiple of 8, pointers 16-byte aligned), otherwise\n"
    "   the same chunk goes element by element with bounds checks. */\n"
    "\n"
    "/* y = act(x) + r (r may be NULL); y may alias x. */\n"
    "extern \"C\" __global__ void activate(h16 *y, const h16 *x, const h16 *r, i64 n, int act, int vec) {\n"
    "    pdl_begin();\n"
    "    const i64 nc = (n + 7) / 8;\n"
    "    GRID_STRIDE(c, nc) {\n"
    "        const i64 e0 = c * 8;\n"
    "        float v[8], rv[8];\n"
    "        if (vec) {\n"
    "            unpack8(((const uint4 *)x)[c], v);\n"
    "            if (r) unpack8(((const uint4 *)r)[c], rv);\n"
    "        } else {\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 8; j++) {\n"
    "                v[j] = e0 + j < n ? h2f(x[e0 + j]) : 0.0f;\n"
    "                rv[j] = r && e0 + j < n ? h2f(r[e0 + j]) : 0.0f;\n"
    "            }\n"
    "        }\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < 8; j++) v[j] = act_f(v[j], act) + (r ? rv[j] : 0.0f);\n"
    "        if (vec) ((uint4 *)y)[c] = pack8(v);\n"
    "        else\n"
    "            for (int j = 0; j < 8; j++) if (e0 + j < n) y[e0 + j] = f2h(v[j]);\n"
    "    }\n"
    "}\n"
    "\n"
    "/* y = a + b; b is a's shape (mode 0), [C] (mode 1) or [B, C] (mode 2, with\n"
    "   rows_per_b rows of a per batch item, b's rows ldb apart). */\n"
    "__device__ __forceinline__ i64 add_bidx(i64 e, i64 c, i64 rows_per_b, i64 ldb, int mode) {\n"
    "    if (mode == 0) return e;\n"
    "    if (mode == 1) return e % c;\n"
    "    return e / (rows_per_b * c) * ldb + e % c;\n"
    "}\n"
    "extern \"C\" __global__ void add(h16 *y, const h16 *a, const h16 *b, i64 n, i64 c, i64 rows_per_b, i64 ldb, int mode,\n"
    "                                 int vec) {\n"
    "    pdl_begin();\n"
    "    const i64 nc = (n + 7) / 8;\n"
    "    GRID_STRIDE(ch, nc) {\n"
    "        const i64 e0 = ch * 8;\n"
    "        if (vec) {\n"
    "            float va[8], vb[8];\n"
    "            unpack8(((const uint4 *)a)[ch], va);\n"
    "            unpack8(*(const uint4 *)(b + add_bidx(e0, c, rows_per_b, ldb, mode)), vb);\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 8; j++) va[j] += vb[j];\n"
    "            ((uint4 *)y)[ch] = pack8(va);\n"
    "        } else {\n"
    "            for (int j = 0; j < 8; j++) {\n"
    "                const i64 e = e0 + j;\n"
    "                if (e < n) y[e] = f2h(h2f(a[e]) + h2f(b[add_bidx(e, c, rows_per_b, ldb, mode)]));\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "}\n"
    "\n"
    "/* y[M, N] = x[:, :N] * gelu(x[:, N:]) */\n"
    "extern \"C\" __global__ void geglu(h16 *y, const h16 *x, i64 m, i64 nn, int vec) {\n"
    "    pdl_begin();\n"
    "    const i64 n = m * nn, nc = (n + 7) / 8;\n"
    "    GRID_STRIDE(ch, nc) {\n"
    "        const i64 e0 = ch * 8;\n"
    "        if (vec) {\n"
    "            const i64 r = e0 / nn, col = e0 - r * nn;\n"
    "            float u[8], g[8];\n"
    "            unpack8(*(const uint4 *)(x + r * 2 * nn + col), u);\n"
    "            unpack8(*(const uint4 *)(x + r * 2 * nn + nn + col), g);\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 8; j++) u[j] *= act_f(g[j], 2);\n"
    "            ((uint4 *)y)[ch] = pack8(u);\n"
    "        } else {\n"
    "            for (int j = 0; j < 8; j++) {\n"
    "                const i64 e = e0 + j;\n"
    "                if (e >= n) break;\n"
    "                const i64 r = e / nn, col = e - r * nn;\n"
    "                y[e] = f2h(h2f(x[r * 2 * nn + col]) * act_f(h2f(x[r * 2 * nn + nn + col]), 2));\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "}\n"
    "\n"
    "/* PyTorch \"nearest\", exactly as the CPU backend computes it (float scale). */\n"
    "__device__ __forceinline__ i64 nearest_src(i64 d, i64 in, i64 out) {\n"
    "    if (out == 2 * in) return d >> 1;\n"
    "    i64 s = (i64)floorf((float)d * ((float)in / (float)out));\n"
    "    return s < in - 1 ? s : in - 1;\n"
    "}\n"
    "extern \"C\" __global__ void upsample(h16 *y, const h16 *x, i64 bn, i64 h, i64 w, i64 c, i64 ho, i64 wo, int vec) {\n"
    "    pdl_begin();\n"
    "    const i64 n = bn * ho * wo * c, nc = (n + 7) / 8;\n"
    "    GRID_STRIDE(ch, nc) {\n"
    "        for (int j = 0; j < (vec ? 1 : 8); j++) {\n"
    "            const i64 e = ch * 8 + j;\n"
    "            if (e >= n) break;\n"
    "            const i64 pix = e / c, cc = e - pix * c, ox = pix % wo, t = pix / wo, oy = t % ho, b = t / ho;\n"
    "            const i64 src = ((b * h + nearest_src(oy, h, ho)) * w + nearest_src(ox, w, wo)) * c + cc;\n"
    "            if (vec) ((uint4 *)y)[ch] = *(const uint4 *)(x + src);\n"
    "            else y[e] = x[src];\n"
    "        }\n"
    "    }\n"
    "}\n"
    "\n"
    "/* y[z][c][r] = x[z][r][c] for a rows x cols matrix (x's rows ldx apart, its batch entries sx apart;\n"
    "   y dense, entries rows * cols apart): 32 x 32 tiles through shared memory. Grid (ceil(cols / 32),\n"
    "   ceil(rows / 32), batch), block (32, 8). The attention math path's V^T on Hopper. */\n"
    "extern \"C\" __global__ void transpose(h16 *y, const h16 *x, i64 rows, i64 cols, i64 ldx, i64 sx) {\n"
    "    pdl_begin();\n"
    "    __shared__ h16 t[32][34];\n"
    "    const i64 r0 = (i64)blockIdx.y * 32, c0 = (i64)blockIdx.x * 32;\n"
    "    x += blockIdx.z * sx;\n"
    "    y += blockIdx.z * rows * cols;\n"
    "    for (int i = threadIdx.y; i < 32; i += 8)\n"
    "        if (r0 + i < rows && c0 + threadIdx.x < cols) t[i][threadIdx.x] = x[(r0 + i) * ldx + c0 + threadIdx.x];\n"
    "    __syncthreads();\n"
    "    for (int i = threadIdx.y; i < 32; i += 8)\n"
    "        if (c0 + i < cols && r0 + threadIdx.x < rows) y[(c0 + i) * rows + r0 + threadIdx.x] = t[threadIdx.x][i];\n"
    "}\n"
    "\n"
    "/* y[r, :] = [a[r, :Ca], b[r, :Cb]] */\n"
    "extern \"C\" __global__ void concat(h16 *y, const h16 *a, const h16 *b, i64 rows, i64 ca, i64 cb, int vec) {\n"
    "    pdl_begin();\n"
    "    const i64 ct = ca + cb, n = rows * ct, nc = (n + 7) / 8;\n"
    "    GRID_STRIDE(ch, nc) {\n"
    "        for (int j = 0; j < (vec ? 1 : 8); j++) {\n"
    "            const i64 e = ch * 8 + j;\n"
    "            if (e >= n) break;\n"
    "            const i64 r = e / ct, col = e - r * ct;\n"
    "            const h16 *src = col < ca ? a + r * ca + col : b + r * cb + (col - ca);\n"
    "            if (vec) ((uint4 *)y)[ch] = *(const uint4 *)src;\n"
    "            else y[e] = *src;\n"
    "        }\n"
    "    }\n"
    "}\n"
    "\n"
    "/* y = sum_k c[k] * x[k] (k < t.n) over n values, clamped to [-clamp, clamp] when clamp > 0: the\n"
    "   sampling loop's arithmetic (sdiff.h's lincomb). x all F16 (x_f16) or all F32, y F16 (y_f16) or\n"
    "   F32; y may be any x[k]. Summed in fp32 in the order of the terms, as the CPU backend does. */\n"
    "struct lincomb_terms { const void *x[5]; float c[5]; int n; };\n"
    "extern \"C\" __global__ void lincomb(void *y, lincomb_terms t, i64 n, float clamp, int x_f16, int y_f16) {\n"
    "    pdl_begin();\n"
    "    GRID_STRIDE(e, n) {\n"
    "        float v = 0.0f;\n"
    "        for (int k = 0; k < t.n; k++)\n"
    "            v = __fadd_rn(v, __fmul_rn(t.c[k], x_f16 ? h2f(((const h16 *)t.x[k])[e]) : ((const float *)t.x[k])[e]));\n"
    "        if (clamp > 0.0f) v = fminf(fmaxf(v, -clamp), clamp);\n"
    "        if (y_f16) ((h16 *)y)[e] = f2h(v);\n"
    "        else ((float *)y)[e] = v;\n"
    "    }\n"
    "}\n"
    "\n"
    "/* y[i, :] = table[ids[i], :] (ids checked on the host) */\n"
    "extern \"C\" __global__ void embed(h16 *y, const h16 *table, const int *ids, i64 n, i64 c, int vec) {\n"
    "    pdl_begin();\n"
    "    const i64 total = n * c, nc = (total + 7) / 8;\n"
    "    GRID_STRIDE(ch, nc) {\n"
    "        for (int j = 0; j < (vec ? 1 : 8); j++) {\n"
    "            const i64 e = ch * 8 + j;\n"
    "            if (e >= total) break;\n"
    "            const i64 i = e / c, col = e - i * c;\n"
    "            const h16 *src = table + (i64)ids[i] * c + col;\n"
    "            if (vec) ((uint4 *)y)[ch] = *(const uint4 *)src;\n"
    "            else y[e] = *src;\n"
    "        }\n"
    "    }\n"
    "}\n"
    "\n"
    "/* sdiff__timestep_features, the same float operations in the same order. */\n"
    "extern \"C\" __global__ void timestep_embedding(h16 *y, const float *t, i64 bn, int dim, int flip, float shift) {\n"
    "    pdl_begin();\n"
    "    const int half = dim / 2;\n"
    "    GRID_STRIDE(e, bn * dim) {\n"
    "        const i64 b = e / dim;\n"
    "        const int j = (int)(e - b * dim);\n"
    "        float v = 0.0f;\n"
    "        if (j < 2 * half) {\n"
    "            const int i = j < half ? j : j - half;\n"
    "            const bool first = j < half;\n"
    "            float ex = -9.21034037197618f * (float)i;\n"
    "            ex = ex / ((float)half - shift);\n"
    "            const float arg = t[b] * expf(ex);\n"
    "            v = (first != (flip != 0)) ? sinf(arg) : cosf(arg);\n"
    "        }\n"
    "        y[e] = f2h(v);\n"
    "    }\n"
    "}\n";

static const char sdiff__cuda_src_norm[] =
    "/* sdiff_norm: group_norm (one cluster kernel, or three), layer_norm (one warp per row) and\n"
    "   softmax_rows (attention's probabilities, one block per row).\n"
    "   gamma and beta are model parameters, which no op writes (the op table says so), so the\n"
    "   one-kernel norms read them before pdl_begin: those loads overlap the previous kernel's tail\n"
    "   instead of standing between the wait and the first loads of x (tools/PERF.md, S19). */\n"
    "/* group_norm in three kernels over x [B, P, C] (P positions, groups over C).\n"
    "   group_norm_stats, grid (S, B): block (s, b) reads rows [s*rpb, (s+1)*rpb)\n"
    "   of batch item b whole (coalesced 16-byte chunks, GN_BATCH rows in flight per\n"
    "   thread), keeps per-channel sums of x - shift (shift: the channel's value in\n"
    "   the block's first row, so the sums stay small and the variance does not\n"
    "   cancel), adds the threads' sums in shared memory in a fixed order (results\n"
    "   are bit-reproducible: no atomics), merges the channels of\n"
    "   each group into (mean, M2) (Chan's formula) and writes that partial.\n"
    "   group_norm_finalize, one warp per (item, group): merges the S partials the\n"
    "   same way and writes (mean, 1/sqrt(var + eps)). (A first version let the\n"
    "   last statistics block do this, behind a counter and a fence: 28 us for\n"
    "   SD's 64x64 level, latency-bound; measured in tools/PERF.md.)\n"
    "   group_norm_apply, grid (A, B): per-channel scale and shift from those\n"
    "   (scale = rstd * gamma, shift = beta - mean * scale) in shared memory, then\n"
    "   y = x * scale + shift (+ SiLU) over its rows. vec: C % 8 == 0 and 16-byte\n"
    "   aligned x, y (8 channels per load), otherwise channel by channel. */\n"
    "/* 8 channels (vec) or 1 channel of a row, raw: the loads of several rows go out before any use. */\n"
    "__device__ __forceinline__ uint4 gn_load(const h16 *p, int vec) {\n"
    "    if (vec) return *(const uint4 *)p;\n"
    "    uint4 u;\n"
    "    u.x = *p; u.y = u.z = u.w = 0u;\n"
    "    return u;\n"
    "}\n"
    "__device__ __forceinline__ void gn_unpack(uint4 u, int vec, float v[8]) {\n"
    "    if (vec) unpack8(u, v);\n"
    "    else v[0] = h2f((h16)u.x);\n"
    "}\n"
    "/* One load's values minus the shift k into the running sums sm and squares sq. */\n"
    "__device__ __forceinline__ void gn_accum(uint4 u, int vec, const float k[8], float sm[8], float sq[8]) {\n"
    "    float v[8];\n"
    "    gn_unpack(u, vec, v);\n"
    "#pragma unroll\n"
    "    for (int j = 0; j < 8; j++)\n"
    "        if (j < (vec ? 8 : 1)) { const float d = v[j] - k[j]; sm[j] += d; sq[j] += d * d; }\n"
    "}\n"
    "/* One load's values normalised, v * a + sh (+ SiLU), stored at yp (8 halves, or 1). */\n"
    "__device__ __forceinline__ void gn_store(h16 *yp, uint4 u, int vec, const float a[8], const float sh[8], int silu) {\n"
    "    float v[8];\n"
    "    gn_unpack(u, vec, v);\n"
    "#pragma unroll\n"
    "    for (int j = 0; j < 8; j++) { v[j] = v[j] * a[j] + sh[j]; if (silu) v[j] = act_f(v[j], 1); }\n"
    "    if (vec) *(uint4 *)yp = pack8(v);\n"
    "    else *yp = f2h(v[0]);\n"
    "}\n"
    "/* f(r, u) over a thread's rows r = r0, r0 + step, ... < n, where u = load(r): the loads of\n"
    "   GN_BATCH rows go out before the first f, so a batch costs one memory round trip, not one per\n"
    "   row (these kernels are chains of latencies; f may store to the row it was given, in place). */\n"
    "#define GN_BATCH 8\n"
    "template <class Load, class F> __device__ __forceinline__ void gn_rows(int r0, int step, int n, Load load, F f) {\n"
    "    for (int r = r0; r < n; r += GN_BATCH * step) {\n"
    "        uint4 u[GN_BATCH];\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < GN_BATCH; j++) u[j] = r + j * step < n ? load(r + j * step) : zero4();\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < GN_BATCH; j++)\n"
    "            if (r + j * step < n) f(r + j * step, u[j]);\n"
    "    }\n"
    "}\n"
    "__device__ __forceinline__ void chan_merge(float &n, float &mean, float &m2, float nb, float mb, float m2b) {\n"
    "    const float tot = n + nb, d = mb - mean;\n"
    "    if (tot <= 0.0f) return;\n"
    "    mean += d * (nb / tot);\n"
    "    m2 += m2b + d * d * (n * nb / tot);\n"
    "    n = tot;\n"
    "}\n"
    "extern \"C\" __global__ void __launch_bounds__(256) group_norm_stats(float *part, const h16 *x, i64 p, int c, int groups,\n"
    "                                                                   int rpb, int vec) {\n"
    "    pdl_begin();\n"
    "    /* shared: cshift[c], then red[rpar][2c]: each row-parallel thread's column sums (row 0 ends\n"
    "       up holding the block's sums, csum = red[0][0..c), csq = red[0][c..2c)) */\n"
    "    extern __shared__ float gsm[];\n"
    "    const int tid = threadIdx.x, nt = blockDim.x, s = blockIdx.x, S = gridDim.x, b = blockIdx.y;\n"
    "    const i64 r0 = (i64)s * rpb;\n"
    "    const int nr = (int)(p - r0 < rpb ? p - r0 : rpb), cg = c / groups;\n"
    "    const int w = vec ? 8 : 1, nch = c / w, tpr = nch < nt ? nch : nt, rpar = nt / tpr;\n"
    "    float *cshift = gsm, *red = gsm + c, *csum = red, *csq = red + c;\n"
    "    const h16 *xb = x + ((i64)b * p + r0) * c;\n"
    "    for (int i = tid; i < c; i += nt) cshift[i] = h2f(xb[i]);\n"
    "    __syncthreads();\n"
    "    if (tid < tpr * rpar) {\n"
    "        float *mine = red + (tid / tpr) * 2 * c;\n"
    "        for (int col = tid % tpr; col < nch; col += tpr) {\n"
    "            float sm[8], sq[8], k[8];\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 8; j++) { sm[j] = 0.0f; sq[j] = 0.0f; k[j] = j < w ? cshift[col * w + j] : 0.0f; }\n"
    "            gn_rows(tid / tpr, rpar, nr, [&](int r) { return gn_load(xb + (i64)r * c + col * w, vec); },\n"
    "                    [&](int, uint4 u) { gn_accum(u, vec, k, sm, sq); });\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 8; j++) /* unrolled: sm, sq stay in registers */\n"
    "                if (j < w) { mine[col * w + j] = sm[j]; mine[c + col * w + j] = sq[j]; }\n"
    "        }\n"
    "    }\n"
    "    __syncthreads();\n"
    "    for (int i = tid; i < 2 * c; i += nt) { /* rows 1.. into row 0, in a fixed order (deterministic) */\n"
    "        float t = red[i];\n"
    "        for (int rr = 1; rr < rpar; rr++) t += red[(i64)rr * 2 * c + i];\n"
    "        red[i] = t;\n"
    "    }\n"
    "    __syncthreads();\n"
    "    for (int g = tid; g < groups; g += nt) {\n"
    "        float n = 0.0f, mean = 0.0f, m2 = 0.0f;\n"
    "        for (int ch = g * cg; ch < (g + 1) * cg; ch++) {\n"
    "            const float sc = csum[ch] / (float)nr;\n"
    "            chan_merge(n, mean, m2, (float)nr, cshift[ch] + sc, fmaxf(csq[ch] - csum[ch] * sc, 0.0f));\n"
    "        }\n"
    "        part[(((i64)b * S + s) * groups + g) * 2] = mean;\n"
    "        part[(((i64)b * S + s) * groups + g) * 2 + 1] = m2;\n"
    "    }\n"
    "}\n"
    "/* One warp per (batch item, group): each lane merges every 32nd partial, then the lanes merge\n"
    "   pairwise; lane 0 writes (mean, 1/sqrt(var + eps)). */\n"
    "extern \"C\" __global__ void __launch_bounds__(256) group_norm_finalize(float *stat, const float *part, i64 p, int groups,\n"
    "                                                                      int S, int rpb, int cg, int items, float eps) {\n"
    "    pdl_begin();\n"
    "    const int lane = threadIdx.x & 31, bg = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);\n"
    "    if (bg >= items * groups) return;\n"
    "    const int b = bg / groups, g = bg - b * groups;\n"
    "    float n = 0.0f, mean = 0.0f, m2 = 0.0f;\n"
    "    for (int t = lane; t < S; t += 32) {\n"
    "        const i64 rows = p - (i64)t * rpb < rpb ? p - (i64)t * rpb : rpb;\n"
    "        const i64 o = (((i64)b * S + t) * groups + g) * 2;\n"
    "        chan_merge(n, mean, m2, (float)(rows * cg), part[o], part[o + 1]);\n"
    "    }\n"
    "#pragma unroll\n"
    "    for (int o = 16; o > 0; o >>= 1) {\n"
    "        const float nb = __shfl_xor_sync(0xffffffffu, n, o), mb = __shfl_xor_sync(0xffffffffu, mean, o),\n"
    "                    m2b = __shfl_xor_sync(0xffffffffu, m2, o);\n"
    "        chan_merge(n, mean, m2, nb, mb, m2b);\n"
    "    }\n"
    "    if (lane == 0) {\n"
    "        stat[(i64)bg * 2] = mean;\n"
    "        stat[(i64)bg * 2 + 1] = rsqrtf(m2 / n + eps);\n"
    "    }\n"
    "}\n"
    "extern \"C\" __global__ void __launch_bounds__(256) group_norm_apply(h16 *y, const h16 *x, const float *stat, const h16 *gamma,\n"
    "                                                                   const h16 *beta, i64 p, int c, int groups, int rpb,\n"
    "                                                                   int silu, int vec) {\n"
    "    pdl_begin();\n"
    "    extern __shared__ float gsm[]; /* scale[c], shift[c] */\n"
    "    float *scale = gsm, *shift = gsm + c;\n"
    "    const int tid = threadIdx.x, nt = blockDim.x, b = blockIdx.y, cg = c / groups;\n"
    "    const i64 r0 = (i64)blockIdx.x * rpb;\n"
    "    const int nr = (int)(p - r0 < rpb ? p - r0 : rpb);\n"
    "    for (int ch = tid; ch < c; ch += nt) {\n"
    "        const i64 o = ((i64)b * groups + ch / cg) * 2;\n"
    "        const float a = stat[o + 1] * (gamma ? h2f(gamma[ch]) : 1.0f);\n"
    "        scale[ch] = a;\n"
    "        shift[ch] = (beta ? h2f(beta[ch]) : 0.0f) - stat[o] * a;\n"
    "    }\n"
    "    __syncthreads();\n"
    "    const h16 *xb = x + ((i64)b * p + r0) * c;\n"
    "    h16 *yb = y + ((i64)b * p + r0) * c;\n"
    "    const int w = vec ? 8 : 1, nch = c / w, tpr = nch < nt ? nch : nt, rpar = nt / tpr;\n"
    "    if (tid >= tpr * rpar) return;\n"
    "    for (int col = tid % tpr; col < nch; col += tpr) {\n"
    "        float a[8], sh[8];\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < 8; j++) { a[j] = j < w ? scale[col * w + j] : 0.0f; sh[j] = j < w ? shift[col * w + j] : 0.0f; }\n"
    "        gn_rows(tid / tpr, rpar, nr, [&](int r) { return gn_load(xb + (i64)r * c + col * w, vec); },\n"
    "                [&](int r, uint4 u) { gn_store(yb + (i64)r * c + col * w, u, vec, a, sh, silu); });\n"
    "    }\n"
    "}\n"
    "/* group_norm_cluster (compute capability 9.0+, thread block clusters): the whole GroupNorm in one\n"
    "   launch, the tensor read from global memory once. Grid (cs, slices, B): one cluster of cs blocks\n"
    "   (1..8, set at launch) per (slice, batch item); a slice is ws = gs * cg channels (whole groups)\n"
    "   and the cluster's blocks split its P rows, rpc each. A block copies its rows x ws channels into\n"
    "   shared memory while it sums them per channel (around a per-channel shift, the channel's value\n"
    "   in the block's first row, as group_norm_stats), reduces those to one (n, mean, M2) per group,\n"
    "   and after a cluster barrier reads its neighbours' triples through distributed shared memory:\n"
    "   every block merges the same partials in the same order (same result, no atomics), then\n"
    "   normalises its rows from shared memory. Each thread reads back only what it wrote, in the same\n"
    "   mapping, so the tile needs no barrier of its own. gamma and beta are fetched at the start, off\n"
    "   the critical path. The kernel is a chain of latencies (one block per SM, each step waiting on\n"
    "   the one before), so each step keeps as much in flight as it can: rows go through gn_rows\n"
    "   (GN_BATCH in flight, in both passes), the per-channel sums of the rpar row-threads are added by\n"
    "   all threads in parts (two short chains instead of one rpar long), and a neighbour's triple\n"
    "   comes in one 16-byte load. The host chooses cs and the slices (sdiff__cuda_gn_cluster_plan) so\n"
    "   the grid's clusters are co-resident, and takes this kernel where the tile fits in shared memory\n"
    "   (SD's UNet at every level; not the VAE's two largest levels). */\n"
    "#if __CUDA_ARCH__ >= 900\n"
    "#define GN_THREADS 512\n"
    "extern \"C\" __global__ void __launch_bounds__(GN_THREADS)\n"
    "group_norm_cluster(h16 *y, const h16 *x, const h16 *gamma, const h16 *beta, i64 p, int c, int cg, int ws, int rpc,\n"
    "                   float eps, int silu, int vec) {\n"
    "    /* shared: part[gs][4] (n, mean, M2: read by the cluster), scale[ws], shift[ws] (gamma and beta\n"
    "       until the merge), red[rpar][2 ws] (as group_norm_stats), then the tile [nr][ws] of halves; the\n"
    "       host sizes it (sdiff__cuda_gn_cluster_plan). */\n"
    "    extern __shared__ __align__(16) float gcl[];\n"
    "    const int tid = threadIdx.x, nt = blockDim.x, lane = tid & 31, warp = tid >> 5, nw = nt >> 5;\n"
    "    const int gs = ws / cg, w = vec ? 8 : 1, nch = ws / w, tpr = nch < nt ? nch : nt, rpar = nt / tpr;\n"
    "    const int ws4 = (ws + 3) & ~3; /* float offsets in fours: the tile starts 16-byte aligned */\n"
    "    const u32 rank = cluster_rank(), cs = cluster_size();\n"
    "    const i64 r0 = (i64)rank * rpc;\n"
    "    const int nr = (int)(p - r0 <= 0 ? 0 : p - r0 < rpc ? p - r0 : rpc);\n"
    "    float *part = gcl, *scale = part + ((4 * gs + 3) & ~3), *shift = scale + ws4, *red = shift + ws4;\n"
    "    float *csum = red, *csq = red + ws;\n"
    "    h16 *tile = (h16 *)(red + ((rpar * 2 * ws + 3) & ~3));\n"
    "    const i64 off = ((i64)blockIdx.z * p + r0) * c + (i64)blockIdx.y * ws;\n"
    "    const h16 *xb = x + off;\n"
    "    h16 *yb = y + off;\n"
    "    for (int i = tid; i < ws; i += nt) { /* parameters: before pdl_begin (sdiff_norm's header) */\n"
    "        scale[i] = gamma ? h2f(gamma[blockIdx.y * ws + i]) : 1.0f;\n"
    "        shift[i] = beta ? h2f(beta[blockIdx.y * ws + i]) : 0.0f;\n"
    "    }\n"
    "    pdl_begin();\n"
    "    if (tid < tpr * rpar) { /* pass 1: shifted sums per channel, the rows kept in the tile */\n"
    "        float *mine = red + (tid / tpr) * 2 * ws;\n"
    "        for (int col = tid % tpr; col < nch; col += tpr) {\n"
    "            float sm[8], sq[8], k[8];\n"
    "            auto load = [&](int r) { return gn_load(xb + (i64)r * c + col * w, vec); };\n"
    "            gn_unpack(nr ? load(0) : zero4(), vec, k); /* the shift: row 0, loaded alongside */\n"
    "            auto keep = [&](int r, uint4 u) {\n"
    "                if (vec) *(uint4 *)(tile + r * ws + col * 8) = u;\n"
    "                else tile[r * ws + col] = (h16)u.x;\n"
    "                gn_accum(u, vec, k, sm, sq);\n"
    "            };\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 8; j++) { sm[j] = 0.0f; sq[j] = 0.0f; }\n"
    "            gn_rows(tid / tpr, rpar, nr, load, keep);\n"
    "            if (vec) { /* 16-byte stores: 8 floats a thread in 4-byte ones were 8-way bank conflicts */\n"
    "                *(float4 *)&mine[col * 8] = float4{sm[0], sm[1], sm[2], sm[3]};\n"
    "                *(float4 *)&mine[col * 8 + 4] = float4{sm[4], sm[5], sm[6], sm[7]};\n"
    "                *(float4 *)&mine[ws + col * 8] = float4{sq[0], sq[1], sq[2], sq[3]};\n"
    "                *(float4 *)&mine[ws + col * 8 + 4] = float4{sq[4], sq[5], sq[6], sq[7]};\n"
    "            } else {\n"
    "                mine[col] = sm[0];\n"
    "                mine[ws + col] = sq[0];\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "    __syncthreads();\n"
    "    { /* red's rpar rows into row 0, in a fixed order: np parts of rpp rows (each into its first\n"
    "         row, by its own thread), then the parts */\n"
    "        const int w2 = 2 * ws, np = w2 >= nt ? 1 : (nt / w2 < rpar ? nt / w2 : rpar), rpp = (rpar + np - 1) / np;\n"
    "        if (np > 1) {\n"
    "            for (int i = tid; i < np * w2; i += nt) {\n"
    "                const int q = i / w2, j = i - q * w2, r0 = q * rpp, r1 = r0 + rpp < rpar ? r0 + rpp : rpar;\n"
    "                float t = 0.0f;\n"
    "                for (int rr = r0; rr < r1; rr++) t += red[rr * w2 + j];\n"
    "                if (r0 < rpar) red[r0 * w2 + j] = t;\n"
    "            }\n"
    "            __syncthreads();\n"
    "        }\n"
    "        for (int j = tid; j < w2; j += nt) {\n"
    "            float t = red[j];\n"
    "            for (int rr = np > 1 ? rpp : 1; rr < rpar; rr += np > 1 ? rpp : 1) t += red[rr * w2 + j];\n"
    "            red[j] = t;\n"
    "        }\n"
    "    }\n"
    "    __syncthreads();\n"
    "    /* per group, one warp, a lane per channel: mean = the channels' means averaged (equal counts),\n"
    "       M2 = sum over channels of (the channel's M2 + nr (its mean - mean)^2). The shift of channel ch\n"
    "       is its row-0 value, read back from the tile. */\n"
    "    for (int g = warp; g < gs; g += nw) {\n"
    "        float cm[4], cm2[4], s = 0.0f;\n"
    "#pragma unroll\n"
    "        for (int i = 0; i < 4; i++) {\n"
    "            const int ch = g * cg + lane + 32 * i;\n"
    "            cm[i] = cm2[i] = 0.0f;\n"
    "            if (nr && lane + 32 * i < cg) {\n"
    "                const float sc = csum[ch] / (float)nr;\n"
    "                cm[i] = h2f(tile[ch]) + sc;\n"
    "                cm2[i] = fmaxf(csq[ch] - csum[ch] * sc, 0.0f);\n"
    "                s += cm[i];\n"
    "            }\n"
    "        }\n"
    "        const float mean = warp_sum(s) / (float)cg;\n"
    "        float m2 = 0.0f;\n"
    "#pragma unroll\n"
    "        for (int i = 0; i < 4; i++)\n"
    "            if (nr && lane + 32 * i < cg) m2 += cm2[i] + (float)nr * (cm[i] - mean) * (cm[i] - mean);\n"
    "        m2 = warp_sum(m2);\n"
    "        if (lane == 0) {\n"
    "            part[4 * g] = (float)nr * (float)cg;\n"
    "            part[4 * g + 1] = nr ? mean : 0.0f;\n"
    "            part[4 * g + 2] = m2;\n"
    "            part[4 * g + 3] = 0.0f; /* unused; read with the rest as one 16-byte load */\n"
    "        }\n"
    "    }\n"
    "    cluster_arrive(); /* the partials out to the cluster */\n"
    "    cluster_wait();\n"
    "    for (int g = warp; g < gs; g += nw) { /* merge: lane k reads block k's partial */\n"
    "        float n = 0.0f, m = 0.0f, m2 = 0.0f;\n"
    "        if (lane < cs) {\n"
    "            const float4 t = cluster_load4(part + 4 * g, lane);\n"
    "            n = t.x, m = t.y, m2 = t.z;\n"
    "        }\n"
    "        const float tot = warp_sum(n), mean = warp_sum(n * m) / tot, d = m - mean;\n"
    "        const float rstd = rsqrtf(warp_sum(m2 + n * d * d) / tot + eps);\n"
    "        for (int i = lane; i < cg; i += 32) {\n"
    "            const int ch = g * cg + i;\n"
    "            const float a = rstd * scale[ch];\n"
    "            scale[ch] = a;\n"
    "            shift[ch] -= mean * a;\n"
    "        }\n"
    "    }\n"
    "    cluster_arrive(); /* done reading the neighbours' shared memory */\n"
    "    __syncthreads();\n"
    "    if (tid < tpr * rpar) { /* pass 2: normalise the tile (each thread its own rows), out to y */\n"
    "        for (int col = tid % tpr; col < nch; col += tpr) {\n"
    "            float a[8], sh[8];\n"
    "            if (vec) { /* 16-byte loads, as the stores above */\n"
    "                const float4 a0 = *(const float4 *)&scale[col * 8], a1 = *(const float4 *)&scale[col * 8 + 4];\n"
    "                const float4 s0 = *(const float4 *)&shift[col * 8], s1 = *(const float4 *)&shift[col * 8 + 4];\n"
    "                a[0] = a0.x, a[1] = a0.y, a[2] = a0.z, a[3] = a0.w, a[4] = a1.x, a[5] = a1.y, a[6] = a1.z, a[7] = a1.w;\n"
    "                sh[0] = s0.x, sh[1] = s0.y, sh[2] = s0.z, sh[3] = s0.w, sh[4] = s1.x, sh[5] = s1.y, sh[6] = s1.z, sh[7] = s1.w;\n"
    "            } else {\n"
    "#pragma unroll\n"
    "                for (int j = 0; j < 8; j++) a[j] = sh[j] = 0.0f;\n"
    "                a[0] = scale[col];\n"
    "                sh[0] = shift[col];\n"
    "            }\n"
    "            auto out = [&](int r, uint4 u) { gn_store(yb + (i64)r * c + col * w, u, vec, a, sh, silu); };\n"
    "            auto back = [&](int r) {\n"
    "                if (vec) return *(const uint4 *)(tile + r * ws + col * 8);\n"
    "                uint4 u = zero4();\n"
    "                u.x = tile[r * ws + col];\n"
    "                return u;\n"
    "            };\n"
    "            gn_rows(tid / tpr, rpar, nr, back, out);\n"
    "        }\n"
    "    }\n"
    "    cluster_wait(); /* no block leaves while a neighbour may still read its partials */\n"
    "}\n"
    "#endif\n"
    "/* group_norm_regs<W>: one block per (group, batch item) that holds the whole group in registers,\n"
    "   for groups of at most GNR_ELEMS x 512 values (SD's UNet below 64x64 but for its widest\n"
    "   concatenations). W channels a load (8, 4 or 2: the widest that divides the group's channels and\n"
    "   the alignment), every load of a thread in flight at once; then the block's sum (the mean), the\n"
    "   sum of the squared deviations from the registers (the variance in two exact passes, no shift),\n"
    "   and y = v * scale + shift (+ SiLU) with the cluster kernel's scale and shift. One memory round\n"
    "   trip each way and two block reductions: a short chain where the cluster kernel's steps were\n"
    "   latency (8-10 us a call at SD's 16x16 and 8x8 levels; tools/PERF.md, S10). No shared tile and\n"
    "   no cluster, so it runs on every GPU. Grid (groups, B); blockDim.x a multiple of 32, at most 512,\n"
    "   with P * cg / W <= blockDim.x * GNR_ELEMS / W loads. */\n"
    "#define GNR_ELEMS 64\n"
    "template <int W> __device__ __forceinline__ void gnr_ld(const h16 *p, u32 *d);\n"
    "template <> __device__ __forceinline__ void gnr_ld<8>(const h16 *p, u32 *d) {\n"
    "    const uint4 u = *(const uint4 *)p;\n"
    "    d[0] = u.x; d[1] = u.y; d[2] = u.z; d[3] = u.w;\n"
    "}\n"
    "template <> __device__ __forceinline__ void gnr_ld<4>(const h16 *p, u32 *d) {\n"
    "    const uint2 u = *(const uint2 *)p;\n"
    "    d[0] = u.x; d[1] = u.y;\n"
    "}\n"
    "template <> __device__ __forceinline__ void gnr_ld<2>(const h16 *p, u32 *d) { d[0] = *(const u32 *)p; }\n"
    "template <int W> __device__ __forceinline__ void gnr_st(h16 *p, const u32 *d);\n"
    "template <> __device__ __forceinline__ void gnr_st<8>(h16 *p, const u32 *d) {\n"
    "    uint4 u; u.x = d[0]; u.y = d[1]; u.z = d[2]; u.w = d[3];\n"
    "    *(uint4 *)p = u;\n"
    "}\n"
    "template <> __device__ __forceinline__ void gnr_st<4>(h16 *p, const u32 *d) {\n"
    "    uint2 u; u.x = d[0]; u.y = d[1];\n"
    "    *(uint2 *)p = u;\n"
    "}\n"
    "template <> __device__ __forceinline__ void gnr_st<2>(h16 *p, const u32 *d) { *(u32 *)p = d[0]; }\n"
    "/* The block's sum of v, the same in every thread (every warp adds the warps' sums in one order). */\n"
    "__device__ __forceinline__ float gnr_block_sum(float v, float *red) {\n"
    "    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;\n"
    "    v = warp_sum(v);\n"
    "    __syncthreads(); /* red is free: the last sum's readers are done */\n"
    "    if (lane == 0) red[warp] = v;\n"
    "    __syncthreads();\n"
    "    return warp_sum(lane < nw ? red[lane] : 0.0f);\n"
    "}\n"
    "template <int W>\n"
    "__device__ __forceinline__ void gn_regs(h16 *y, const h16 *x, const h16 *gamma, const h16 *beta, i64 p, int c, int cg,\n"
    "                                        float eps, int silu) {\n"
    "    constexpr int R = GNR_ELEMS / W; /* loads a thread holds, at most */\n"
    "    __shared__ float red[32], scale[128], shift[128];\n"
    "    const int g = blockIdx.x, tid = threadIdx.x, nt = blockDim.x, nv = cg / W, n = (int)p * nv;\n"
    "    const i64 base = (i64)blockIdx.y * p * c + (i64)g * cg;\n"
    "    for (int i = tid; i < cg; i += nt) { /* parameters: before pdl_begin (sdiff_norm's header) */\n"
    "        scale[i] = gamma ? h2f(gamma[g * cg + i]) : 1.0f;\n"
    "        shift[i] = beta ? h2f(beta[g * cg + i]) : 0.0f;\n"
    "    }\n"
    "    pdl_begin();\n"
    "    /* load k of this thread: number tid + k nt of the group's (row, load) pairs in row-major\n"
    "       order; from one k to the next the row and the load within it advance by nt's quotient and\n"
    "       remainder by nv (no divisions in the loops, no index arrays in registers) */\n"
    "    const int dq = nt / nv, dr = nt - dq * nv, row0 = tid / nv, cl0 = tid - row0 * nv;\n"
    "    u32 d[R * W / 2];\n"
    "    {\n"
    "        int row = row0, cl = cl0;\n"
    "#pragma unroll\n"
    "        for (int k = 0; k < R; ++k) {\n"
    "            if (tid + k * nt < n) gnr_ld<W>(x + base + row * c + cl * W, d + k * (W / 2));\n"
    "            row += dq;\n"
    "            cl += dr;\n"
    "            if (cl >= nv) { cl -= nv; ++row; }\n"
    "        }\n"
    "    }\n"
    "    float s = 0.0f;\n"
    "#pragma unroll\n"
    "    for (int k = 0; k < R; ++k)\n"
    "        if (tid + k * nt < n)\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < W / 2; ++j) s += h2f((h16)(d[k * (W / 2) + j] & 0xffffu)) + h2f((h16)(d[k * (W / 2) + j] >> 16));\n"
    "    const float count = (float)(p * cg), mean = gnr_block_sum(s, red) / count;\n"
    "    float q = 0.0f;\n"
    "#pragma unroll\n"
    "    for (int k = 0; k < R; ++k)\n"
    "        if (tid + k * nt < n)\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < W / 2; ++j) {\n"
    "                const float a = h2f((h16)(d[k * (W / 2) + j] & 0xffffu)) - mean, b = h2f((h16)(d[k * (W / 2) + j] >> 16)) - mean;\n"
    "                q += a * a + b * b;\n"
    "            }\n"
    "    const float rstd = rsqrtf(gnr_block_sum(q, red) / count + eps);\n"
    "    int row = row0, cl = cl0;\n"
    "#pragma unroll\n"
    "    for (int k = 0; k < R; ++k) {\n"
    "        if (tid + k * nt < n) {\n"
    "            u32 o[W / 2];\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < W / 2; ++j) {\n"
    "                float v[2] = {h2f((h16)(d[k * (W / 2) + j] & 0xffffu)), h2f((h16)(d[k * (W / 2) + j] >> 16))};\n"
    "#pragma unroll\n"
    "                for (int e = 0; e < 2; ++e) {\n"
    "                    const int ch = cl * W + 2 * j + e;\n"
    "                    const float a = rstd * scale[ch];\n"
    "                    v[e] = v[e] * a + (shift[ch] - mean * a);\n"
    "                    if (silu) v[e] = act_f(v[e], 1);\n"
    "                }\n"
    "                o[j] = (u32)f2h(v[0]) | ((u32)f2h(v[1]) << 16);\n"
    "            }\n"
    "            gnr_st<W>(y + base + row * c + cl * W, o);\n"
    "        }\n"
    "        row += dq;\n"
    "        cl += dr;\n"
    "        if (cl >= nv) { cl -= nv; ++row; }\n"
    "    }\n"
    "}\n"
    "extern \"C\" __global__ void __launch_bounds__(512) group_norm_regs8(h16 *y, const h16 *x, const h16 *gamma, const h16 *beta,\n"
    "                                                                   i64 p, int c, int cg, float eps, int silu) {\n"
    "    gn_regs<8>(y, x, gamma, beta, p, c, cg, eps, silu);\n"
    "}\n"
    "extern \"C\" __global__ void __launch_bounds__(512) group_norm_regs4(h16 *y, const h16 *x, const h16 *gamma, const h16 *beta,\n"
    "                                                                   i64 p, int c, int cg, float eps, int silu) {\n"
    "    gn_regs<4>(y, x, gamma, beta, p, c, cg, eps, silu);\n"
    "}\n"
    "extern \"C\" __global__ void __launch_bounds__(512) group_norm_regs2(h16 *y, const h16 *x, const h16 *gamma, const h16 *beta,\n"
    "                                                                   i64 p, int c, int cg, float eps, int silu) {\n"
    "    gn_regs<2>(y, x, gamma, beta, p, c, cg, eps, silu);\n"
    "}\n"
    "/* layer_norm: one warp per row. The vectorised kernels (C % 8 == 0, 16-byte aligned x, y, gamma,\n"
    "   beta) keep the row in registers, K 16-byte chunks (8 halves) a lane, so C <= 256 K, and sum the\n"
    "   variance around the mean; K is a template parameter so a kernel holds only the registers its\n"
    "   rows need (one kernel sized for C = 2048 took 104 registers, which left SD's C = 320 rows two\n"
    "   blocks an SM: a latency-bound quarter of the warps). layer_norm, any C: three passes over\n"
    "   memory. */\n"
    "template <int K>\n"
    "__device__ __forceinline__ void ln_vec(h16 *y, const h16 *x, const h16 *gamma, const h16 *beta, i64 rows, i64 c, float eps) {\n"
    "    const i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);\n"
    "    const int lane = threadIdx.x & 31, nch = (int)(c / 8);\n"
    "    uint4 gk[K], bk[K]; /* the parameters: before pdl_begin (sdiff_norm's header) */\n"
    "#pragma unroll\n"
    "    for (int k = 0; k < K; k++)\n"
    "        if (lane + 32 * k < nch) {\n"
    "            if (gamma) gk[k] = ((const uint4 *)gamma)[lane + 32 * k];\n"
    "            if (beta) bk[k] = ((const uint4 *)beta)[lane + 32 * k];\n"
    "        }\n"
    "    pdl_begin();\n"
    "    if (row >= rows) return;\n"
    "    const uint4 *xr = (const uint4 *)(x + row * c);\n"
    "    uint4 *yr = (uint4 *)(y + row * c);\n"
    "    float v[K][8], s = 0.0f, s2 = 0.0f;\n"
    "#pragma unroll\n"
    "    for (int k = 0; k < K; k++)\n"
    "        if (lane + 32 * k < nch) {\n"
    "            unpack8(xr[lane + 32 * k], v[k]);\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 8; j++) s += v[k][j];\n"
    "        }\n"
    "    const float mean = warp_sum(s) / (float)c;\n"
    "#pragma unroll\n"
    "    for (int k = 0; k < K; k++)\n"
    "        if (lane + 32 * k < nch)\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 8; j++) { const float d = v[k][j] - mean; s2 += d * d; }\n"
    "    const float rstd = 1.0f / sqrtf(warp_sum(s2) / (float)c + eps);\n"
    "#pragma unroll\n"
    "    for (int k = 0; k < K; k++) {\n"
    "        const int ch = lane + 32 * k;\n"
    "        if (ch >= nch) continue;\n"
    "        float g[8], b[8];\n"
    "        if (gamma) unpack8(gk[k], g);\n"
    "        if (beta) unpack8(bk[k], b);\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < 8; j++) v[k][j] = (v[k][j] - mean) * rstd * (gamma ? g[j] : 1.0f) + (beta ? b[j] : 0.0f);\n"
    "        yr[ch] = pack8(v[k]);\n"
    "    }\n"
    "}\n"
    "extern \"C\" __global__ void __launch_bounds__(256) layer_norm_vec2(h16 *y, const h16 *x, const h16 *gamma, const h16 *beta,\n"
    "                                                                 i64 rows, i64 c, float eps) {\n"
    "    ln_vec<2>(y, x, gamma, beta, rows, c, eps);\n"
    "}\n"
    "extern \"C\" __global__ void __launch_bounds__(256) layer_norm_vec3(h16 *y, const h16 *x, const h16 *gamma, const h16 *beta,\n"
    "                                                                 i64 rows, i64 c, float eps) {\n"
    "    ln_vec<3>(y, x, gamma, beta, rows, c, eps);\n"
    "}\n"
    "extern \"C\" __global__ void __launch_bounds__(256) layer_norm_vec5(h16 *y, const h16 *x, const h16 *gamma, const h16 *beta,\n"
    "                                                                 i64 rows, i64 c, float eps) {\n"
    "    ln_vec<5>(y, x, gamma, beta, rows, c, eps);\n"
    "}\n"
    "extern \"C\" __global__ void __launch_bounds__(256) layer_norm_vec8(h16 *y, const h16 *x, const h16 *gamma, const h16 *beta,\n"
    "                                                                 i64 rows, i64 c, float eps) {\n"
    "    ln_vec<8>(y, x, gamma, beta, rows, c, eps);\n"
    "}\n"
    "extern \"C\" __global__ void __launch_bounds__(256) layer_norm(h16 *y, const h16 *x, const h16 *gamma, const h16 *beta,\n"
    "                                                            i64 rows, i64 c, float eps) {\n"
    "    pdl_begin();\n"
    "    const i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);\n"
    "    const int lane = threadIdx.x & 31;\n"
    "    if (row >= rows) return;\n"
    "    const h16 *xr = x + row * c;\n"
    "    h16 *yr = y + row * c;\n"
    "    float s = 0;\n"
    "    for (i64 i = lane; i < c; i += 32) s += h2f(xr[i]);\n"
    "    const float mean = warp_sum(s) / (float)c;\n"
    "    float s2 = 0;\n"
    "    for (i64 i = lane; i < c; i += 32) { const float d = h2f(xr[i]) - mean; s2 += d * d; }\n"
    "    const float rstd = 1.0f / sqrtf(warp_sum(s2) / (float)c + eps);\n"
    "    for (i64 i = lane; i < c; i += 32)\n"
    "        yr[i] = f2h((h2f(xr[i]) - mean) * rstd * (gamma ? h2f(gamma[i]) : 1.0f) + (beta ? h2f(beta[i]) : 0.0f));\n"
    "}\n"
    "\n"
    "/* softmax_rows: p[r] = softmax(s[r]) for rows of n fp32 scores (the scale\n"
    "   is already in them), written as fp16. One block of SMAX_THREADS per row:\n"
    "   each thread keeps an online (max m, sum l of exp(x - m)) pair over its\n"
    "   elements, the pairs merge over the warp and the block, then a second pass\n"
    "   writes exp(x - m) / l. vec: n % 4 == 0 with 16-byte aligned s and 8-byte\n"
    "   aligned p (float4 loads, 4-half stores). */\n"
    "#define SMAX_THREADS 256\n"
    "__device__ __forceinline__ void smax_add(float &m, float &l, float x) {\n"
    "    if (x > m) { l = l * expf(m - x) + 1.0f; m = x; }\n"
    "    else l += expf(x - m);\n"
    "}\n"
    "__device__ __forceinline__ void smax_merge(float &m, float &l, float m2, float l2) {\n"
    "    const float mn = fmaxf(m, m2);\n"
    "    if (mn == SDIFF_NEG_INF) return; /* both empty */\n"
    "    l = l * expf(m - mn) + l2 * expf(m2 - mn);\n"
    "    m = mn;\n"
    "}\n"
    "extern \"C\" __global__ void __launch_bounds__(SMAX_THREADS) softmax_rows(h16 *p, const float *s, i64 n, int vec) {\n"
    "    pdl_begin();\n"
    "    __shared__ float red_m[SMAX_THREADS / 32], red_l[SMAX_THREADS / 32];\n"
    "    const float *sr = s + (i64)blockIdx.x * n;\n"
    "    h16 *pr = p + (i64)blockIdx.x * n;\n"
    "    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;\n"
    "    float m = SDIFF_NEG_INF, l = 0.0f;\n"
    "    if (vec) {\n"
    "        for (i64 c = tid; c < n / 4; c += SMAX_THREADS) {\n"
    "            const float4 x = ((const float4 *)sr)[c];\n"
    "            smax_add(m, l, x.x); smax_add(m, l, x.y); smax_add(m, l, x.z); smax_add(m, l, x.w);\n"
    "        }\n"
    "    } else {\n"
    "        for (i64 j = tid; j < n; j += SMAX_THREADS) smax_add(m, l, sr[j]);\n"
    "    }\n"
    "#pragma unroll\n"
    "    for (int o = 16; o > 0; o >>= 1) {\n"
    "        const float m2 = __shfl_xor_sync(0xffffffffu, m, o), l2 = __shfl_xor_sync(0xffffffffu, l, o);\n"
    "        smax_merge(m, l, m2, l2);\n"
    "    }\n"
    "    if (lane == 0) { red_m[warp] = m; red_l[warp] = l; }\n"
    "    __syncthreads();\n"
    "    m = red_m[0]; l = red_l[0];\n"
    "#pragma unroll\n"
    "    for (int w = 1; w < SMAX_THREADS / 32; w++) smax_merge(m, l, red_m[w], red_l[w]);\n"
    "    const float inv = 1.0f / l;\n"
    "    if (vec) {\n"
    "        for (i64 c = tid; c < n / 4; c += SMAX_THREADS) {\n"
    "            const float4 x = ((const float4 *)sr)[c];\n"
    "            uint2 h;\n"
    "            h.x = (u32)f2h(expf(x.x - m) * inv) | ((u32)f2h(expf(x.y - m) * inv) << 16);\n"
    "            h.y = (u32)f2h(expf(x.z - m) * inv) | ((u32)f2h(expf(x.w - m) * inv) << 16);\n"
    "            ((uint2 *)pr)[c] = h;\n"
    "        }\n"
    "    } else {\n"
    "        for (i64 j = tid; j < n; j += SMAX_THREADS) pr[j] = f2h(expf(sr[j] - m) * inv);\n"
    "    }\n"
    "}\n";

/* conv_few_co's tile (output rows x columns), weight row stride (halves) and shared memory: the
   kernel source below takes the first three from here, as text. */
#define SDIFF__CUDA_CF_TH 4
#define SDIFF__CUDA_CF_TW 64
#define SDIFF__CUDA_CF_WSTR 72
#define SDIFF__CUDA_CF_SMEM \
    ((SDIFF__CUDA_CF_TH + 2) * (SDIFF__CUDA_CF_TW + 2) * 128 + 9 * 8 * SDIFF__CUDA_CF_WSTR * 2)
/* conv_few_ci's halves per row of shared memory (its patch rows and weights), likewise */
#define SDIFF__CUDA_FCI_STR 88
#define SDIFF__CUDA_STR_(x) #x
#define SDIFF__CUDA_STR(x) SDIFF__CUDA_STR_(x)
static const char sdiff__cuda_src_im2col[] =
    "/* sdiff_im2col: the convolutions that are not tensor-core tiles. im2col: rows [m0, m0 + mc) of the convolution's patch matrix\n"
    "   A[m = (b, oy, ox)][k = (ky, kx, ci)], the order of the weight's\n"
    "   [Co, KH, KW, Ci] rows, zeros outside x (so y's size sets the bottom/right\n"
    "   padding, as on the CPU). vec: Ci % 8 == 0 and x 16-byte aligned, so each\n"
    "   8-channel chunk is one vector that never crosses a (ky, kx) tap. */\n"
    "extern \"C\" __global__ void im2col(h16 *a, const h16 *x, i64 m0, i64 mc, i64 h, i64 w, i64 ci, int kh, int kw,\n"
    "                                  i64 ho, i64 wo, int stride, int pad, int vec) {\n"
    "    pdl_begin();\n"
    "    const i64 k = (i64)kh * kw * ci, n = mc * k, nc = vec ? n / 8 : n;\n"
    "    GRID_STRIDE(ch, nc) {\n"
    "        const i64 e = vec ? ch * 8 : ch;\n"
    "        const i64 r = e / k, kk = e - r * k, m = m0 + r;\n"
    "        const i64 ox = m % wo, t = m / wo, oy = t % ho, b = t / ho;\n"
    "        const i64 cc = kk % ci, tap = kk / ci, kx = tap % kw, ky = tap / kw;\n"
    "        const i64 iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;\n"
    "        const bool in = iy >= 0 && iy < h && ix >= 0 && ix < w;\n"
    "        const i64 src = ((b * h + iy) * w + ix) * ci + cc;\n"
    "        if (vec) ((uint4 *)a)[ch] = in ? *(const uint4 *)(x + src) : zero4();\n"
    "        else a[e] = in ? x[src] : (h16)0;\n"
    "    }\n"
    "}\n"
    "/* conv_few_co: a stride-1 convolution with at most 8 output channels (SD's conv_out: 4 latent or\n"
    "   3 image channels). The tensor-core kernels would compute 80 or more columns for 3 or 4 real ones\n"
    "   and read x once per tap (the VAE's 512x512 conv_out: 0.21 ms on an H100 for 1.8 GFLOP). Here a\n"
    "   block computes CF_TH rows x CF_TW columns of one image's output. For each 64-channel chunk of x\n"
    "   it copies the tile's halo (CF_TH + KH - 1 rows of CF_TW + KW - 1 pixels; zeros outside the\n"
    "   image) into shared memory once, and every tap reads it there: mma.sync m16n8k16 with A = 16\n"
    "   output pixels shifted by the tap (ldmatrix takes a row address per pixel, so a shift costs\n"
    "   nothing) and B = the tap's weights for 16 channels, n = the output channels padded to 8. The\n"
    "   halo's 16-byte chunk c of pixel p sits at chunk c ^ (p & 7): the 8 pixels an ldmatrix reads\n"
    "   land in 8 different bank groups. Warp w owns output row w / 2, columns 32 (w % 2) .. + 31 (two\n"
    "   16-pixel m-tiles). Epilogue as the other convolutions: y = fp16(fp16(acc + bias) + res).\n"
    "   Requirements (checked by the host): stride 1, KH, KW <= 3, C % 64 == 0, Co <= 8, x and w\n"
    "   16-byte aligned. Grid (ceil(Wo / CF_TW), ceil(Ho / CF_TH), B), 256 threads, the host's\n"
    "   SDIFF__CUDA_CF_SMEM bytes of dynamic shared memory (the halo, then the weights). CF_TH, CF_TW\n"
    "   and CF_WSTR come from the host's SDIFF__CUDA_CF_* (one definition); the warp layout assumes\n"
    "   4 x 64. CF_WSTR: halves per (tap, output channel) row of weights, 64 + 8, so the 8 channels'\n"
    "   rows of one B fragment fall in different banks. Small images (SD's UNet conv_out: 32 tiles for\n"
    "   an H100's 132 SMs, 33 us for 0.2 GFLOP) split the channels over a cluster of ks blocks along x\n"
    "   (sm_90+; block x = tile column * ks + rank): block rank sums the chunks rank, rank + ks, ...,\n"
    "   and rank 0 adds the others' partial sums, in rank order, through distributed shared memory\n"
    "   before the epilogue. */\n"
    "#define CF_TH " SDIFF__CUDA_STR(SDIFF__CUDA_CF_TH) "\n"
    "#define CF_TW " SDIFF__CUDA_STR(SDIFF__CUDA_CF_TW) "\n"
    "#define CF_WSTR " SDIFF__CUDA_STR(SDIFF__CUDA_CF_WSTR) "\n"
    "#define CF_HALO ((CF_TH + 2) * (CF_TW + 2)) /* pixels, for taps up to 3 x 3 */\n"
    "extern \"C\" __global__ void __launch_bounds__(256)\n"
    "conv_few_co(h16 *y, const h16 *x, const h16 *w, const h16 *bias, const h16 *res, int H, int W, int C, int KH, int KW,\n"
    "            int Ho, int Wo, int pad, int Co) {\n"
    "    pdl_begin();\n"
    "    extern __shared__ __align__(16) unsigned char halo[]; /* the halo, then the weights ws */\n"
    "    h16 *ws = (h16 *)(halo + CF_HALO * 128);\n"
    "    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;\n"
    "#if __CUDA_ARCH__ >= 900\n"
    "    const int ks = (int)cluster_size(), rank = (int)cluster_rank();\n"
    "#else\n"
    "    const int ks = 1, rank = 0;\n"
    "#endif\n"
    "    const int ox0 = (blockIdx.x / ks) * CF_TW, oy0 = blockIdx.y * CF_TH, b = blockIdx.z;\n"
    "    const int hw = CF_TW + KW - 1, hp = (CF_TH + KH - 1) * hw, taps = KH * KW;\n"
    "    const int row = warp >> 1, col0 = (warp & 1) * 32;\n"
    "    const u32 hbase = smem_addr(halo);\n"
    "    float acc[2][4];\n"
    "#pragma unroll\n"
    "    for (int mt = 0; mt < 2; ++mt)\n"
    "#pragma unroll\n"
    "        for (int e = 0; e < 4; ++e) acc[mt][e] = 0.f;\n"
    "    for (int c0 = rank * 64; c0 < C; c0 += 64 * ks) {\n"
    "        __syncthreads(); /* the previous chunk's reads are done */\n"
    "        for (int i = tid; i < hp * 8; i += 256) {\n"
    "            const int p = i >> 3, c = i & 7, iy = oy0 - pad + p / hw, ix = ox0 - pad + p % hw;\n"
    "            const bool ok = iy >= 0 && iy < H && ix >= 0 && ix < W;\n"
    "            const h16 *src = ok ? x + (((i64)b * H + iy) * W + ix) * C + c0 + c * 8 : x;\n"
    "            cp_async16(hbase + p * 128 + ((c ^ (p & 7)) << 4), src, ok ? 16 : 0);\n"
    "        }\n"
    "        for (int i = tid; i < taps * 64; i += 256) { /* (tap, output channel, 8 channels); zeros past Co */\n"
    "            const int tap = i >> 6, co = (i >> 3) & 7, k8 = (i & 7) * 8;\n"
    "            const h16 *src = co < Co ? w + ((i64)co * taps + tap) * C + c0 + k8 : w;\n"
    "            cp_async16(hbase + CF_HALO * 128 + ((tap * 8 + co) * CF_WSTR + k8) * 2, src, co < Co ? 16 : 0);\n"
    "        }\n"
    "        cp_commit();\n"
    "        cp_wait<0>();\n"
    "        __syncthreads();\n"
    "        for (int tap = 0; tap < taps; ++tap) {\n"
    "            const int kh = tap / KW, kw = tap - kh * KW;\n"
    "#pragma unroll\n"
    "            for (int k16 = 0; k16 < 4; ++k16) {\n"
    "                const h16 *wb = ws + (tap * 8 + g) * CF_WSTR + k16 * 16 + 2 * t4;\n"
    "                const u32 b0 = *(const u32 *)wb, b1 = *(const u32 *)(wb + 8);\n"
    "#pragma unroll\n"
    "                for (int mt = 0; mt < 2; ++mt) {\n"
    "                    const int p = (row + kh) * hw + col0 + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8 + kw;\n"
    "                    const int c = k16 * 2 + (lane >> 4);\n"
    "                    u32 a[4];\n"
    "                    ldsm_x4(hbase + p * 128 + ((c ^ (p & 7)) << 4), a[0], a[1], a[2], a[3]);\n"
    "                    mma16816(acc[mt], a, b0, b1);\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "#if __CUDA_ARCH__ >= 900\n"
    "    if (ks > 1) { /* this thread's 8 partial sums to rank 0's same thread (the halo is free by now) */\n"
    "        const u32 part = hbase + tid * 32;\n"
    "        __syncthreads();\n"
    "        asm volatile(\"st.shared.v4.f32 [%0], {%1, %2, %3, %4};\" ::\"r\"(part), \"f\"(acc[0][0]), \"f\"(acc[0][1]), \"f\"(acc[0][2]),\n"
    "                     \"f\"(acc[0][3]) : \"memory\");\n"
    "        asm volatile(\"st.shared.v4.f32 [%0], {%1, %2, %3, %4};\" ::\"r\"(part + 16), \"f\"(acc[1][0]), \"f\"(acc[1][1]),\n"
    "                     \"f\"(acc[1][2]), \"f\"(acc[1][3]) : \"memory\");\n"
    "        cluster_arrive();\n"
    "        cluster_wait();\n"
    "        if (rank == 0)\n"
    "            for (int q = 1; q < ks; ++q)\n"
    "#pragma unroll\n"
    "                for (int mt = 0; mt < 2; ++mt) {\n"
    "                    const float4 v = cluster_ld4(part + 16 * mt, (u32)q);\n"
    "                    acc[mt][0] += v.x; acc[mt][1] += v.y; acc[mt][2] += v.z; acc[mt][3] += v.w;\n"
    "                }\n"
    "        cluster_arrive(); /* no block leaves while rank 0 may still read its partials */\n"
    "        cluster_wait();\n"
    "        if (rank != 0) return;\n"
    "    }\n"
    "#endif\n"
    "    /* acc[mt] = pixels g and g + 8 of m-tile mt, output channels 2 t4 and 2 t4 + 1 */\n"
    "    const int oy = oy0 + row;\n"
    "    if (oy >= Ho) return;\n"
    "#pragma unroll\n"
    "    for (int mt = 0; mt < 2; ++mt)\n"
    "#pragma unroll\n"
    "        for (int e = 0; e < 4; ++e) {\n"
    "            const int ox = ox0 + col0 + mt * 16 + g + (e >> 1) * 8, co = 2 * t4 + (e & 1);\n"
    "            if (ox >= Wo || co >= Co) continue;\n"
    "            const i64 o = (((i64)b * Ho + oy) * Wo + ox) * Co + co;\n"
    "            float v = h2f(f2h(acc[mt][e] + (bias ? h2f(bias[co]) : 0.f)));\n"
    "            if (res) v += h2f(res[o]);\n"
    "            y[o] = f2h(v);\n"
    "        }\n"
    "}\n"
    "/* conv_few_ci: a stride-1 convolution of an input with few channels (SD's conv_in: 4 latent\n"
    "   channels). K = KH KW C = 36 is no multiple of 8, so im2col + a GEMM meant cuBLASLt at 2-byte\n"
    "   alignment: 15 us at 64x64 for 0.2 GFLOP. A block computes 64 output pixels of one row, every\n"
    "   output channel. It copies w ([Co][K], contiguous) and the bias into shared memory as they are\n"
    "   and writes the pixels' patch rows there (tap-major, as w's rows; zeros outside x and from K up\n"
    "   to kp, K rounded up to 16), then mma.sync m16n8k16: warp w takes pixels 16 (w % 4) .. + 15, its\n"
    "   A fragments loaded once, and a quarter of the output channels (w / 4). B's values past K are the\n"
    "   next output channel's weights (16 zeros after the last), which meet the patch rows' zeros.\n"
    "   Epilogue as the other convolutions: y = fp16(fp16(acc + bias) + res), res in y's layout.\n"
    "   FCI_STR halves a patch row (88: the 8 rows an ldmatrix reads fall in 8 different bank groups).\n"
    "   Requirements (checked by the host): stride 1, K <= 80, Co % 16 == 0, w 16-byte aligned, y\n"
    "   4-byte aligned. Grid (ceil(Wo / 64), Ho, B), 512 threads (16 warps: each one's chain of\n"
    "   tiles is short; 8 measured 15 us, latency-bound), (64 FCI_STR + Co K + 16 + Co) 2 bytes of\n"
    "   dynamic shared memory. */\n"
    "#define FCI_STR " SDIFF__CUDA_STR(SDIFF__CUDA_FCI_STR) "\n"
    "extern \"C\" __global__ void __launch_bounds__(512)\n"
    "conv_few_ci(h16 *y, const h16 *x, const h16 *w, const h16 *bias, const h16 *res, int H, int W, int C, int KH, int KW,\n"
    "            int Ho, int Wo, int pad, int Co) {\n"
    "    pdl_begin();\n"
    "    extern __shared__ __align__(16) unsigned char fci[];\n"
    "    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;\n"
    "    const int ox0 = blockIdx.x * 64, oy = blockIdx.y, b = blockIdx.z, kk = KH * KW * C, kp = (kk + 15) & ~15;\n"
    "    h16 *as = (h16 *)fci, *ws = as + 64 * FCI_STR, *bs = ws + Co * kk + 16;\n"
    "    for (int i = tid; i < Co * kk / 8; i += 512) /* 16-byte copies: Co K is a multiple of 16 */\n"
    "        cp_async16(smem_addr(ws) + 16 * i, w + 8 * i, 16);\n"
    "    cp_commit();\n"
    "    if (tid < 16) ws[Co * kk + tid] = (h16)0;\n"
    "    for (int i = tid; i < Co; i += 512) bs[i] = bias ? bias[i] : (h16)0;\n"
    "    { /* patch rows: thread t, pixel t % 64, values k = t / 64, + 8, ...: its loads in flight together */\n"
    "        const int p = tid & 63, k0 = tid >> 6, ix0 = ox0 + p - pad, iy0 = oy - pad;\n"
    "        int c = k0, kh = 0, kw = 0;\n"
    "        for (; c >= C; c -= C)\n"
    "            if (++kw == KW) { kw = 0; ++kh; }\n"
    "        h16 v[10];\n"
    "#pragma unroll\n"
    "        for (int it = 0; it < 10; ++it) {\n"
    "            const int iy = iy0 + kh, ix = ix0 + kw;\n"
    "            v[it] = (h16)0;\n"
    "            if (8 * it + k0 < kk && iy >= 0 && iy < H && ix >= 0 && ix < W) v[it] = x[(((i64)b * H + iy) * W + ix) * C + c];\n"
    "            for (c += 8; c >= C; c -= C)\n"
    "                if (++kw == KW) { kw = 0; ++kh; }\n"
    "        }\n"
    "#pragma unroll\n"
    "        for (int it = 0; it < 10; ++it)\n"
    "            if (8 * it + k0 < kp) as[p * FCI_STR + 8 * it + k0] = v[it];\n"
    "    }\n"
    "    cp_wait<0>();\n"
    "    __syncthreads();\n"
    "    const int px = 16 * (warp & 3), q = warp >> 2, nt = Co / 8; /* this warp: n8 tiles [q nt / 4, (q + 1) nt / 4) */\n"
    "    u32 a[5][4];\n"
    "#pragma unroll\n"
    "    for (int k16 = 0; k16 < 5; ++k16)\n"
    "        if (16 * k16 < kp)\n"
    "            ldsm_x4(smem_addr(as + (px + (lane & 15)) * FCI_STR + 16 * k16 + 8 * (lane >> 4)), a[k16][0], a[k16][1],\n"
    "                    a[k16][2], a[k16][3]);\n"
    "    /* B's pair (k, k + 1) of output channel n (k even): one 4-byte load where K is even */\n"
    "    auto wpair = [&](int n, int k) -> u32 {\n"
    "        const h16 *r = ws + n * kk + k;\n"
    "        return kk & 1 ? (u32)r[0] | (u32)r[1] << 16 : *(const u32 *)r;\n"
    "    };\n"
    "    h16 *yr[2]; /* this thread's two pixels in y (NULL past Wo), and in res */\n"
    "    const h16 *rr[2];\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < 2; ++r) {\n"
    "        const int ox = ox0 + px + g + 8 * r;\n"
    "        const i64 o = (((i64)b * Ho + oy) * Wo + ox) * Co;\n"
    "        yr[r] = ox < Wo ? y + o : nullptr;\n"
    "        rr[r] = res ? res + o : nullptr;\n"
    "    }\n"
    "#pragma unroll 2\n"
    "    for (int j = q * nt / 4; j < (q + 1) * nt / 4; ++j) {\n"
    "        const int n = 8 * j + 2 * t4;\n"
    "        float acc[4] = {0.f, 0.f, 0.f, 0.f};\n"
    "#pragma unroll\n"
    "        for (int k16 = 0; k16 < 5; ++k16)\n"
    "            if (16 * k16 < kp) mma16816(acc, a[k16], wpair(8 * j + g, 16 * k16 + 2 * t4), wpair(8 * j + g, 16 * k16 + 2 * t4 + 8));\n"
    "        /* acc = pixels px + g (0, 1) and px + g + 8 (2, 3), output channels n, n + 1 */\n"
    "        const float b0 = h2f(bs[n]), b1 = h2f(bs[n + 1]);\n"
    "#pragma unroll\n"
    "        for (int r = 0; r < 2; ++r) {\n"
    "            if (!yr[r]) continue;\n"
    "            float v0 = h2f(f2h(acc[2 * r] + b0)), v1 = h2f(f2h(acc[2 * r + 1] + b1));\n"
    "            if (res) { v0 += h2f(rr[r][n]); v1 += h2f(rr[r][n + 1]); }\n"
    "            *(u32 *)(yr[r] + n) = (u32)f2h(v0) | ((u32)f2h(v1) << 16);\n"
    "        }\n"
    "    }\n"
    "}\n"
    "/* upsample_conv_weights: a 3x3 convolution w [Co][3][3][C] of a nearest 2x upsampling, as four\n"
    "   2x2 convolutions of the small image, one per output phase (py, px) (sdiff_conv2d_fwd_tma's\n"
    "   phase): wp [4][Co][2][2][C]. Output row 2i + py reads upsampled rows 2i + py - 1 .. + 1, which\n"
    "   are small rows i - 1, i, i (py = 0) or i, i, i + 1 (py = 1): tap a of the 2x2 sums kernel rows\n"
    "   {0} and {1, 2} (py = 0) or {0, 1} and {2} (py = 1); columns likewise. Summed in fp32, rounded\n"
    "   once. */\n"
    "extern \"C\" __global__ void upsample_conv_weights(h16 *wp, const h16 *w, int co, int c) {\n"
    "    pdl_begin();\n"
    "    const int c8 = c / 8; /* 8 channels (16 bytes) a thread: c % 8 == 0, w and wp 16-byte aligned */\n"
    "    GRID_STRIDE(e, (i64)16 * co * c8) {\n"
    "        const int cc = (int)(e % c8) * 8, t = (int)(e / c8), b = t & 1, a = (t >> 1) & 1, o = (t >> 2) % co;\n"
    "        const int py = (t >> 2) / co >> 1, px = (t >> 2) / co & 1;\n"
    "        const int r0 = py ? (a ? 2 : 0) : (a ? 1 : 0), r1 = py ? (a ? 2 : 1) : (a ? 2 : 0);\n"
    "        const int c0 = px ? (b ? 2 : 0) : (b ? 1 : 0), c1 = px ? (b ? 2 : 1) : (b ? 2 : 0);\n"
    "        float sum[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}, v[8];\n"
    "        for (int kh = r0; kh <= r1; kh++)\n"
    "            for (int kw = c0; kw <= c1; kw++) {\n"
    "                unpack8(*(const uint4 *)(w + (((i64)o * 3 + kh) * 3 + kw) * c + cc), v);\n"
    "#pragma unroll\n"
    "                for (int i = 0; i < 8; i++) sum[i] += v[i];\n"
    "            }\n"
    "        *(uint4 *)(wp + (i64)t * c + cc) = pack8(sum);\n"
    "    }\n"
    "}\n";

static const char sdiff__cuda_src_attention_fallback[] =
    "/* sdiff_attention_fallback: a simple, exact attention for any head dim up to\n"
    "   32 * SDIFF_ATTN_DPL (a -D of each variant). One warp per query row: the\n"
    "   scaled query sits in shared memory as float; keys go 32 at a time, lane j\n"
    "   computing the score of key j; an online softmax (running max m and sum l,\n"
    "   fp32) rescales the output accumulator, of which each lane owns the dims\n"
    "   lane, lane + 32, ... Causal: query i sees keys 0..i. Strides are in\n"
    "   elements, so q, k and v may be column views. */\n"
    "#ifndef SDIFF_ATTN_DPL\n"
    "#define SDIFF_ATTN_DPL 2\n"
    "#endif\n"
    "#define ATTN_WARPS 4\n"
    "extern \"C\" __global__ void __launch_bounds__(32 * ATTN_WARPS)\n"
    "attention_fallback(h16 *o, const h16 *q, const h16 *k, const h16 *v, i64 lq, i64 lk, int heads, int d, i64 qs, i64 ks,\n"
    "                   i64 vs, float scale, int causal, int vec) {\n"
    "    pdl_begin();\n"
    "    __shared__ float qsh[ATTN_WARPS][32 * SDIFF_ATTN_DPL];\n"
    "    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;\n"
    "    const i64 qi = (i64)blockIdx.x * ATTN_WARPS + warp, b = blockIdx.y / heads, hh = blockIdx.y % heads;\n"
    "    if (qi >= lq) return; /* whole warps leave; no block-wide barrier follows */\n"
    "    const h16 *qr = q + (b * lq + qi) * qs + hh * d;\n"
    "    for (int i = lane; i < d; i += 32) qsh[warp][i] = h2f(qr[i]) * scale;\n"
    "    __syncwarp();\n"
    "    const float *qw = qsh[warp];\n"
    "    const h16 *kb = k + b * lk * ks + hh * d, *vb = v + b * lk * vs + hh * d;\n"
    "    const i64 kend = causal ? (qi + 1 < lk ? qi + 1 : lk) : lk;\n"
    "    float acc[SDIFF_ATTN_DPL];\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < SDIFF_ATTN_DPL; i++) acc[i] = 0.0f;\n"
    "    float m = SDIFF_NEG_INF, l = 0.0f;\n"
    "    for (i64 j0 = 0; j0 < kend; j0 += 32) {\n"
    "        const i64 j = j0 + lane;\n"
    "        float s = SDIFF_NEG_INF;\n"
    "        if (j < kend) {\n"
    "            const h16 *kr = kb + j * ks;\n"
    "            float dot = 0.0f;\n"
    "            if (vec) {\n"
    "                for (int i = 0; i < d; i += 8) {\n"
    "                    float kf[8];\n"
    "                    unpack8(*(const uint4 *)(kr + i), kf);\n"
    "#pragma unroll\n"
    "                    for (int t = 0; t < 8; t++) dot += qw[i + t] * kf[t];\n"
    "                }\n"
    "            } else {\n"
    "                for (int i = 0; i < d; i++) dot += qw[i] * h2f(kr[i]);\n"
    "            }\n"
    "            s = dot;\n"
    "        }\n"
    "        const float mn = fmaxf(m, warp_max(s)); /* finite: key j0 is always valid */\n"
    "        const float p = j < kend ? expf(s - mn) : 0.0f, alpha = expf(m - mn);\n"
    "        l = l * alpha + warp_sum(p);\n"
    "#pragma unroll\n"
    "        for (int i = 0; i < SDIFF_ATTN_DPL; i++) acc[i] *= alpha;\n"
    "        m = mn;\n"
    "        const int nvalid = kend - j0 < 32 ? (int)(kend - j0) : 32;\n"
    "        for (int jj = 0; jj < nvalid; jj++) {\n"
    "            const float pj = __shfl_sync(0xffffffffu, p, jj);\n"
    "            const h16 *vr = vb + (j0 + jj) * vs;\n"
    "#pragma unroll\n"
    "            for (int i = 0; i < SDIFF_ATTN_DPL; i++) {\n"
    "                const int dd = lane + 32 * i;\n"
    "                if (dd < d) acc[i] += pj * h2f(vr[dd]);\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "    h16 *orow = o + (b * lq + qi) * (i64)heads * d + hh * d;\n"
    "    const float inv = 1.0f / l;\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < SDIFF_ATTN_DPL; i++) {\n"
    "        const int dd = lane + 32 * i;\n"
    "        if (dd < d) orow[dd] = f2h(acc[i] * inv);\n"
    "    }\n"
    "}\n";

/* BEGIN GENERATED: tensor-core helpers (tools/kernels/gen_kernels.py) */
/* The tensor-core helpers the kernels below #include as "mma.cuh" (NVRTC gets this string as an
   in-memory header of that name). */
static const char sdiff__cu_mma_src[] =
    "// mma.cuh - the device helpers sdiff's NVRTC kernels share: pdl_begin (every kernel; the library's\n"
    "// prelude includes this file) and the tensor-core ones (attn_kernel.cu, attn_kernel_sm90.cu,\n"
    "// conv_kernel.cu): shared-memory addresses, cp.async, ldmatrix, mma.sync m16n8k16 (fp16 in, fp32\n"
    "// accumulate), fp16x2 packing and, for sm_90a, wgmma with its descriptors and fences. Plain PTX through inline asm: no CUDA headers, so NVRTC needs no include path.\n"
    "// The library hands it to NVRTC as an in-memory header named \"mma.cuh\" (tools/kernels/gen_kernels.py).\n"
    "#ifndef SDIFF_MMA_CUH\n"
    "#define SDIFF_MMA_CUH\n"
    "typedef unsigned short sd_half;\n"
    "typedef unsigned int u32;\n"
    "// Each kernel uses some of these: \"unused\" keeps NVRTC quiet about the rest.\n"
    "#define MMA_FN static __device__ __forceinline__ __attribute__((unused))\n"
    "\n"
    "// Programmatic dependent launch (Hopper and later; nothing before): the library launches its\n"
    "// kernels with programmatic stream serialization, so a kernel's blocks may be scheduled while\n"
    "// the kernel before it drains, instead of after it has finished and the launch has gone\n"
    "// through. Every kernel calls pdl_begin() before it touches memory that earlier work may write\n"
    "// (the norms read their gamma and beta, model parameters, before it): griddepcontrol.wait\n"
    "// returns once the previous grid has completed and its writes are visible (at once when there\n"
    "// is no such dependency), then launch_dependents lets the next kernel be launched; its blocks\n"
    "// take SMs only as this grid's last blocks leave them, and wait in their own pdl_begin(). What a\n"
    "// kernel does before it (the TMA kernels' mbarrier setup and tmap_prefetch) overlaps the previous\n"
    "// kernel's tail (a UNet step 5.69 -> 5.60 ms on two machines, no change on two others: PERF.md S14).\n"
    "MMA_FN void pdl_begin() {\n"
    "#if __CUDA_ARCH__ >= 900\n"
    "    asm volatile(\"griddepcontrol.wait;\\n\" ::: \"memory\");\n"
    "    asm volatile(\"griddepcontrol.launch_dependents;\\n\" ::: \"memory\");\n"
    "#endif\n"
    "}\n"
    "\n"
    "MMA_FN u32 smem_addr(const void *p) {\n"
    "    u32 r;\n"
    "    asm(\"{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }\" : \"=r\"(r) : \"l\"(p));\n"
    "    return r;\n"
    "}\n"
    "// 16-byte async copy global -> shared; bytes = 0 writes 16 zero bytes (src not read).\n"
    "MMA_FN void cp_async16(u32 dst, const void *src, int bytes) {\n"
    "    asm volatile(\"cp.async.cg.shared.global [%0], [%1], 16, %2;\\n\" ::\"r\"(dst), \"l\"(src), \"r\"(bytes) : \"memory\");\n"
    "}\n"
    "MMA_FN void cp_commit() { asm volatile(\"cp.async.commit_group;\\n\" ::: \"memory\"); }\n"
    "template <int N> MMA_FN void cp_wait() {\n"
    "    asm volatile(\"cp.async.wait_group %0;\\n\" ::\"n\"(N) : \"memory\");\n"
    "}\n"
    "MMA_FN void ldsm_x4(u32 a, u32 &r0, u32 &r1, u32 &r2, u32 &r3) {\n"
    "    asm volatile(\"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\\n\"\n"
    "                 : \"=r\"(r0), \"=r\"(r1), \"=r\"(r2), \"=r\"(r3) : \"r\"(a) : \"memory\");\n"
    "}\n"
    "MMA_FN void ldsm_x4_t(u32 a, u32 &r0, u32 &r1, u32 &r2, u32 &r3) {\n"
    "    asm volatile(\"ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\\n\"\n"
    "                 : \"=r\"(r0), \"=r\"(r1), \"=r\"(r2), \"=r\"(r3) : \"r\"(a) : \"memory\");\n"
    "}\n"
    "// d += a(16x16 row-major fp16) * b(16x8, k-major \"col\" fp16), fp32 accumulators.\n"
    "MMA_FN void mma16816(float *d, const u32 *a, u32 b0, u32 b1) {\n"
    "    asm(\"mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, \"\n"
    "        \"{%0,%1,%2,%3};\\n\"\n"
    "        : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3])\n"
    "        : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b0), \"r\"(b1));\n"
    "}\n"
    "// d += a(16x8 row-major fp16, a[0..1]) * b(8x8, k-major fp16): the last 8 of a reduction that is\n"
    "// 8 more than a multiple of 16 (attention at D = 40, 72), at half an m16n8k16's cost.\n"
    "MMA_FN void mma1688(float *d, const u32 *a, u32 b0) {\n"
    "    asm(\"mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\\n\"\n"
    "        : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3])\n"
    "        : \"r\"(a[0]), \"r\"(a[1]), \"r\"(b0));\n"
    "}\n"
    "// 2^x (MUFU, approximate; flushes denormals): the flash-attention softmax in the log2 domain.\n"
    "MMA_FN float ex2(float x) {\n"
    "    float y;\n"
    "    asm(\"ex2.approx.ftz.f32 %0, %1;\" : \"=f\"(y) : \"f\"(x));\n"
    "    return y;\n"
    "}\n"
    "// One fp16 (16-bit storage) -> float.\n"
    "MMA_FN float half_to_float(sd_half h) {\n"
    "    float f;\n"
    "    asm(\"cvt.f32.f16 %0, %1;\" : \"=f\"(f) : \"h\"(h));\n"
    "    return f;\n"
    "}\n"
    "// Two floats -> packed fp16x2, lo in the low 16 bits (the lower column / k index).\n"
    "MMA_FN u32 pack_h2(float lo, float hi) {\n"
    "    u32 r;\n"
    "    asm(\"cvt.rn.f16x2.f32 %0, %1, %2;\" : \"=r\"(r) : \"f\"(hi), \"f\"(lo));\n"
    "    return r;\n"
    "}\n"
    "// GELU, the exact (erf) form: PyTorch's default, the GEGLU of SD's feed-forward.\n"
    "MMA_FN float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }\n"
    "// GEGLU's output from the fp32 sums of its two halves, rounded as the unfused route rounds them (a\n"
    "// linear layer's fp16 outputs h and g, then h * gelu(g) in fp32).\n"
    "MMA_FN float geglu_out(float h, float g) {\n"
    "    const u32 hg = pack_h2(h, g);\n"
    "    return half_to_float((sd_half)(hg & 0xffffu)) * gelu_erf(half_to_float((sd_half)(hg >> 16)));\n"
    "}\n"
    "// The convolution epilogues' last step: 8 fp16 outputs (v: four packed pairs, lowest first) to\n"
    "// y[0..7], each plus res[e] when res is given (rounded as a separate fp16 add). left: the outputs\n"
    "// left in the row from y (those past it are not written); vec: one 16-byte load and store (y and\n"
    "// res 16-byte aligned, left >= 8).\n"
    "// v (8 fp16 as four packed pairs, lowest first) += r (8 fp16, the same order), each sum rounded to fp16.\n"
    "MMA_FN void add_h8(u32 *v, uint4 r) {\n"
    "    const u32 rw[4] = {r.x, r.y, r.z, r.w};\n"
    "#pragma unroll\n"
    "    for (int e = 0; e < 4; ++e)\n"
    "        v[e] = pack_h2(half_to_float((sd_half)(v[e] & 0xffffu)) + half_to_float((sd_half)(rw[e] & 0xffffu)),\n"
    "                       half_to_float((sd_half)(v[e] >> 16)) + half_to_float((sd_half)(rw[e] >> 16)));\n"
    "}\n"
    "MMA_FN void store_out8(sd_half *y, const sd_half *res, int left, u32 *v, int vec) {\n"
    "    if (vec) {\n"
    "        if (res) add_h8(v, *(const uint4 *)res);\n"
    "        uint4 ov;\n"
    "        ov.x = v[0]; ov.y = v[1]; ov.z = v[2]; ov.w = v[3];\n"
    "        *(uint4 *)y = ov;\n"
    "        return;\n"
    "    }\n"
    "#pragma unroll\n"
    "    for (int e = 0; e < 8; ++e) {\n"
    "        if (e >= left) break;\n"
    "        sd_half h = (sd_half)((v[e >> 1] >> ((e & 1) * 16)) & 0xffffu);\n"
    "        if (res) h = (sd_half)(pack_h2(half_to_float(h) + half_to_float(res[e]), 0.f) & 0xffffu);\n"
    "        y[e] = h;\n"
    "    }\n"
    "}\n"
    "// ---- Thread block clusters (sm_90 and later): group_norm_cluster's exchange, conv_kernel_sm90.cu's\n"
    "// split-K. Without a cluster launch a block is a cluster of one.\n"
    "#if __CUDA_ARCH__ >= 900\n"
    "MMA_FN u32 cluster_rank() { u32 r; asm volatile(\"mov.u32 %0, %%cluster_ctarank;\" : \"=r\"(r)); return r; }\n"
    "MMA_FN u32 cluster_size() { u32 r; asm volatile(\"mov.u32 %0, %%cluster_nctarank;\" : \"=r\"(r)); return r; }\n"
    "MMA_FN void cluster_arrive() { asm volatile(\"barrier.cluster.arrive.release.aligned;\" ::: \"memory\"); }\n"
    "MMA_FN void cluster_wait() { asm volatile(\"barrier.cluster.wait.acquire.aligned;\" ::: \"memory\"); }\n"
    "// The four floats at shared address a (16-byte aligned) in the shared memory of the cluster's block `rank`.\n"
    "MMA_FN float4 cluster_ld4(u32 a, u32 rank) {\n"
    "    u32 r;\n"
    "    float4 v;\n"
    "    asm volatile(\"mapa.shared::cluster.u32 %0, %1, %2;\" : \"=r\"(r) : \"r\"(a), \"r\"(rank));\n"
    "    asm volatile(\"ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\" : \"=f\"(v.x), \"=f\"(v.y), \"=f\"(v.z), \"=f\"(v.w)\n"
    "                 : \"r\"(r) : \"memory\");\n"
    "    return v;\n"
    "}\n"
    "MMA_FN float4 cluster_load4(const float *p, u32 rank) { return cluster_ld4(smem_addr(p), rank); }\n"
    "// The producer warpgroup's part in a split-K exchange (gemm_kernel_sm90.cu, conv_kernel_sm90.cu):\n"
    "// the consumers pass two cluster barriers (partials written; partials read), and every thread of\n"
    "// the cluster must arrive at both, the producer's idle ones included.\n"
    "MMA_FN void split_k_producer_sync() {\n"
    "    __syncwarp();\n"
    "    cluster_arrive();\n"
    "    cluster_wait();\n"
    "    cluster_arrive();\n"
    "    cluster_wait();\n"
    "}\n"
    "// The consumers' part: a warpgroup's accumulators (TILES 64-row wgmma tiles of COLS fp32 columns, in\n"
    "// the fragment layout below: rows g, g+8 of each warp's 16, columns 8j + 2t4) stored as rows row0 +\n"
    "// 64 mt (+ 8) of the fp32 partial tile at shared address base, part_str floats a row, then the\n"
    "// first cluster barrier: the partials are visible to the cluster.\n"
    "template <int TILES, int COLS>\n"
    "MMA_FN void split_k_store_partials(u32 base, float (*acc)[COLS / 2], int row0, int t4, int part_str) {\n"
    "#pragma unroll\n"
    "    for (int mt = 0; mt < TILES; ++mt)\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < COLS / 8; ++j) {\n"
    "            const float *d = &acc[mt][4 * j];\n"
    "            const u32 a0 = base + ((row0 + mt * 64) * part_str + j * 8 + 2 * t4) * 4, a1 = a0 + 8 * part_str * 4;\n"
    "            asm volatile(\"st.shared.v2.f32 [%0], {%1, %2};\\n\" ::\"r\"(a0), \"f\"(d[0]), \"f\"(d[1]) : \"memory\");\n"
    "            asm volatile(\"st.shared.v2.f32 [%0], {%1, %2};\\n\" ::\"r\"(a1), \"f\"(d[2]), \"f\"(d[3]) : \"memory\");\n"
    "        }\n"
    "    cluster_arrive();\n"
    "    cluster_wait();\n"
    "}\n"
    "#endif\n"
    "// ---- Hopper (sm_90a only): wgmma, the warpgroup (4 warps, 128 threads) tensor-core instruction.\n"
    "// A and B come from shared memory through 64-bit descriptors; D (fp32) stays in registers, laid\n"
    "// out per warp like mma.sync's m16n8 accumulators: warp w of the group owns rows 16w..16w+15,\n"
    "// d[4j..4j+3] = rows g, g, g+8, g+8 (g = lane/4), columns 8j + 2(lane%4) + {0,1,0,1}.\n"
    "// wgmma runs asynchronously: issue after wgmma_fence(), then wgmma_commit(), and read D only\n"
    "// after wgmma_wait<n>() has retired its group.\n"
    "#if defined(__CUDA_ARCH_FEAT_SM90_ALL)\n"
    "typedef unsigned long long u64;\n"
    "// Shared-memory operand descriptors. The operand is built from core matrices of 8 rows x 16\n"
    "// bytes. Without swizzle (layout type 0) each core matrix is 128 contiguous bytes; lbo is the\n"
    "// byte distance between core matrices adjacent along K, sbo along M/N. With the 128-byte swizzle\n"
    "// (layout type 1; rows of 64 fp16, 16-byte chunk c of row r stored at chunk c ^ (r & 7), the tile\n"
    "// 1024-byte aligned) rows are 128 bytes apart and sbo is the 8-row group, 1024 bytes. K-major\n"
    "// (wgmma_desc_sw128: rows along M/N, 64 of K in a row): lbo is unused (1); the k-th 16-wide step\n"
    "// starts 32*k bytes further (the hardware applies the swizzle to the address it computes).\n"
    "// MN-major (wgmma_desc_sw128_mn, read with the transpose bit: rows along K, 64 of M/N in a row):\n"
    "// 16 of K are two 8-row groups (+2048 bytes a step), and an M/N extent over 64 continues in the\n"
    "// next block of rows, lbo bytes further.\n"
    "MMA_FN u64 wgmma_desc(u32 saddr, u32 lbo, u32 sbo) {\n"
    "    return (u64)((saddr & 0x3FFFFu) >> 4) | ((u64)((lbo & 0x3FFFFu) >> 4) << 16) | ((u64)((sbo & 0x3FFFFu) >> 4) << 32);\n"
    "}\n"
    "MMA_FN u64 wgmma_desc_sw128(u32 saddr) { return wgmma_desc(saddr, 16, 1024) | ((u64)1 << 62); }\n"
    "MMA_FN u64 wgmma_desc_sw128_mn(u32 saddr, u32 lbo) { return wgmma_desc(saddr, lbo, 1024) | ((u64)1 << 62); }\n"
    "// Generic-proxy shared-memory writes (st.shared, cp.async) must be fenced before wgmma (async proxy) reads them.\n"
    "MMA_FN void fence_proxy_async() { asm volatile(\"fence.proxy.async.shared::cta;\\n\" ::: \"memory\"); }\n"
    "MMA_FN void wgmma_fence() { asm volatile(\"wgmma.fence.sync.aligned;\\n\" ::: \"memory\"); }\n"
    "MMA_FN void wgmma_commit() { asm volatile(\"wgmma.commit_group.sync.aligned;\\n\" ::: \"memory\"); }\n"
    "template <int N> MMA_FN void wgmma_wait() {\n"
    "    asm volatile(\"wgmma.wait_group.sync.aligned %0;\\n\" ::\"n\"(N) : \"memory\");\n"
    "}\n"
    "// Pins accumulator registers in place: the compiler must not read, move or reuse them across a\n"
    "// point where an in-flight wgmma may still write them (before issue and after the wait).\n"
    "template <int R> MMA_FN void wgmma_pin(float *d) {\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < R; ++i) asm volatile(\"\" : \"+f\"(d[i])::\"memory\");\n"
    "}\n"
    "// A CUtensorMap (cuda.h): 128 opaque bytes, made on the host by cuTensorMapEncodeTiled.\n"
    "struct __align__(64) sd_tmap { unsigned long long v[16]; };\n"
    "// ---- mbarriers (shared::cta) and the TMA (attn_kernel_sm90.cu, conv_kernel_sm90.cu).\n"
    "MMA_FN void mbar_init(u32 bar, u32 count) {\n"
    "    asm volatile(\"mbarrier.init.shared::cta.b64 [%0], %1;\\n\" ::\"r\"(bar), \"r\"(count) : \"memory\");\n"
    "}\n"
    "MMA_FN void mbar_expect_tx(u32 bar, u32 bytes) {\n"
    "    asm volatile(\"mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\\n\" ::\"r\"(bar), \"r\"(bytes) : \"memory\");\n"
    "}\n"
    "MMA_FN void mbar_arrive(u32 bar) {\n"
    "    asm volatile(\"mbarrier.arrive.shared::cta.b64 _, [%0];\\n\" ::\"r\"(bar) : \"memory\");\n"
    "}\n"
    "// Waits until the barrier's phase with this parity has completed (a fresh barrier counts its\n"
    "// phase before 0, parity 1, as completed: producers start there).\n"
    "MMA_FN void mbar_wait(u32 bar, u32 parity) {\n"
    "    asm volatile(\"{\\n.reg .pred p;\\nWAIT_%=:\\n\"\n"
    "                 \"mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\\n\"\n"
    "                 \"@!p bra WAIT_%=;\\n}\\n\" ::\"r\"(bar), \"r\"(parity) : \"memory\");\n"
    "}\n"
    "// One box of a 4-D or 2-D tensor map (coordinates innermost first, outside the tensor: zeros)\n"
    "// into shared memory; completes `bar`'s transaction bytes.\n"
    "MMA_FN void tma_load4(u32 dst, const sd_tmap *map, int c0, int c1, int c2, int c3, u32 bar) {\n"
    "    asm volatile(\"cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes\"\n"
    "                 \" [%0], [%1, {%2, %3, %4, %5}], [%6];\\n\"\n"
    "                 ::\"r\"(dst), \"l\"(map), \"r\"(c0), \"r\"(c1), \"r\"(c2), \"r\"(c3), \"r\"(bar) : \"memory\");\n"
    "}\n"
    "MMA_FN void tma_load2(u32 dst, const sd_tmap *map, int c0, int c1, u32 bar) {\n"
    "    asm volatile(\"cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes\"\n"
    "                 \" [%0], [%1, {%2, %3}], [%4];\\n\"\n"
    "                 ::\"r\"(dst), \"l\"(map), \"r\"(c0), \"r\"(c1), \"r\"(bar) : \"memory\");\n"
    "}\n"
    "// A tensor map's descriptor fetched ahead of the first copy that uses it (the TMA kernels do it\n"
    "// before pdl_begin, while the previous kernel drains).\n"
    "MMA_FN void tmap_prefetch(const sd_tmap *map) { asm volatile(\"prefetch.tensormap [%0];\\n\" ::\"l\"(map) : \"memory\"); }\n"
    "#define WG_D4(d, i) \"+f\"(d[i]), \"+f\"(d[i + 1]), \"+f\"(d[i + 2]), \"+f\"(d[i + 3])\n"
    "#define WG_D8(d, i) WG_D4(d, i), WG_D4(d, i + 4)\n"
    "// d (64 x N, fp32) += A (64 x 16, K-major descriptor a) * B (N x 16, K-major descriptor b);\n"
    "// scale_d = 0: d = A*B. N: 64, 80, 128, 160, 256.\n"
    "template <int N> MMA_FN void wgmma_ss(float *d, u64 a, u64 b, int scale_d) {\n"
    "    if constexpr (N == 64)\n"
    "        asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %34, 0;\\n\"\n"
    "                     \"wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {\"\n"
    "                     \"%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\\n}\\n\"\n"
    "                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24) : \"l\"(a), \"l\"(b), \"r\"(scale_d));\n"
    "    else if constexpr (N == 80)\n"
    "        asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %42, 0;\\n\"\n"
    "                     \"wgmma.mma_async.sync.aligned.m64n80k16.f32.f16.f16 {\"\n"
    "                     \"%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39}, %40, %41, p, 1, 1, 0, 0;\\n}\\n\"\n"
    "                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32) : \"l\"(a), \"l\"(b), \"r\"(scale_d));\n"
    "    else if constexpr (N == 128)\n"
    "        asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %66, 0;\\n\"\n"
    "                     \"wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {\"\n"
    "                     \"%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\\n}\\n\"\n"
    "                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32), WG_D8(d, 40), WG_D8(d, 48), WG_D8(d, 56) : \"l\"(a), \"l\"(b), \"r\"(scale_d));\n"
    "    else if constexpr (N == 160)\n"
    "        asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %82, 0;\\n\"\n"
    "                     \"wgmma.mma_async.sync.aligned.m64n160k16.f32.f16.f16 {\"\n"
    "                     \"%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79}, %80, %81, p, 1, 1, 0, 0;\\n}\\n\"\n"
    "                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32), WG_D8(d, 40), WG_D8(d, 48), WG_D8(d, 56), WG_D8(d, 64), WG_D8(d, 72) : \"l\"(a), \"l\"(b), \"r\"(scale_d));\n"
    "    else if constexpr (N == 256)\n"
    "        asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %130, 0;\\n\"\n"
    "                     \"wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {\"\n"
    "                     \"%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, %128, %129, p, 1, 1, 0, 0;\\n}\\n\"\n"
    "                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32), WG_D8(d, 40), WG_D8(d, 48), WG_D8(d, 56), WG_D8(d, 64), WG_D8(d, 72), WG_D8(d, 80), WG_D8(d, 88), WG_D8(d, 96), WG_D8(d, 104), WG_D8(d, 112), WG_D8(d, 120) : \"l\"(a), \"l\"(b), \"r\"(scale_d));\n"
    "    else static_assert(N == 64, \"wgmma_ss: N must be 64, 80, 128, 160 or 256\");\n"
    "}\n"
    "#endif\n"
    "#endif\n";
/* cuTensorMapEncodeTiled's type (cuda.h's enums as int, cuuint64_t as unsigned long long): the TMA
   kernels' tensor maps (attn_kernel_sm90.cu, conv_kernel_sm90.cu) are made with it on the host. */
typedef int (*sdiff__cu_tmap_encode_fn)(void *map, int dtype, unsigned rank, void *addr, const unsigned long long *dims,
                                        const unsigned long long *strides, const unsigned *box,
                                        const unsigned *elem_strides, int interleave, int swizzle, int l2_promotion,
                                        int oob_fill);
/* END GENERATED: tensor-core helpers */

/* BEGIN GENERATED: flash attention (tools/kernels/gen_kernels.py) */
/* The FlashAttention-2-style kernel (mma.sync m16n8k16, fp16 in, fp32 accumulate).
   Kernel (compile with NVRTC, mma.cuh given as a header, --gpu-architecture=sm_80/86/89/90a, -DHEAD_DIM=D
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
static const char sdiff__cu_attention_src[] =
    "// sdiff attention forward: FlashAttention-2 style, fp16 in/out, fp32 accumulate (mma.sync m16n8k16)\n"
    "// Plain NVRTC source: no CUDA headers (its one #include, mma.cuh, NVRTC gets as an in-memory header).\n"
    "// fp16 is carried as 16-bit storage (unsigned short) and converted with PTX (cvt.rn.f16x2.f32);\n"
    "// tensor cores read it raw.\n"
    "//\n"
    "// Defines: HEAD_DIM (multiple of 8, required), CAUSAL (0/1, default 0).\n"
    "// Optional overrides (defaults below derive them from HEAD_DIM; the host helper\n"
    "// sdiff__cu_attention_launch_dims mirrors the same table): ATT_MT (16-row m-tiles per\n"
    "// warp), ATT_WARPS (warps per block), ATT_BN (keys per tile), ATT_MINB (min blocks/SM).\n"
    "//\n"
    "// Layout: a block owns BM = ATT_WARPS*16*ATT_MT consecutive queries of one (batch, head);\n"
    "// warp w owns rows [w*16*MT, (w+1)*16*MT) of them, so softmax rows never leave a warp.\n"
    "// Shared memory (dynamic, 16-byte aligned): two stages, each a K tile [BN][STR] followed by\n"
    "// a V tile [BN][STR] (fp16, STR = DP + 8 halves; DP = HEAD_DIM rounded up to 16). The +8\n"
    "// half (16-byte) row pad makes the 8 row addresses of every ldmatrix fall in different\n"
    "// 16-byte bank groups: (2*DP+16) mod 128 is an odd multiple of 16. The Q tile [BM][STR] is\n"
    "// staged in the stage-1 region (it is moved to registers before stage 1 is first filled),\n"
    "// and at the end the output is staged in the stage-0 region for 16-byte global stores.\n"
    "// Columns [HEAD_DIM, DP) of Q, K and V are zero-filled (cp.async src-size 0) so the padded\n"
    "// dot products equal the real ones; rows past Lq / Lk are zero-filled too (a zero V row\n"
    "// times a zero probability stays 0: stale shared memory could hold NaN/Inf bit patterns).\n"
    "\n"
    "#ifndef HEAD_DIM\n"
    "#error \"HEAD_DIM must be defined\"\n"
    "#endif\n"
    "#if (HEAD_DIM % 8) != 0\n"
    "#error \"HEAD_DIM must be a multiple of 8 (16-byte cp.async chunks)\"\n"
    "#endif\n"
    "#ifndef CAUSAL\n"
    "#define CAUSAL 0\n"
    "#endif\n"
    "#define DP (((HEAD_DIM) + 15) / 16 * 16)\n"
    "/* Default tiles (mirrored by sdiff__cu_attention_launch_dims):\n"
    "   DP <= 64: 2 m-tiles/warp (32 rows), 64 keys; DP <= 96: 32 rows, 32 keys;\n"
    "   DP <= 128: 16 rows, 64 keys; larger: 16 rows, 32 keys. Chosen so the fp32 O/S\n"
    "   accumulators and Q fragments fit in registers with 0 spills at 2 blocks/SM. */\n"
    "#if DP <= 64\n"
    "#define ATT_DEF_MT 2\n"
    "#define ATT_DEF_BN 64\n"
    "#elif DP <= 96\n"
    "#define ATT_DEF_MT 2\n"
    "#define ATT_DEF_BN 32\n"
    "#elif DP <= 128\n"
    "#define ATT_DEF_MT 1\n"
    "#define ATT_DEF_BN 64\n"
    "#else\n"
    "#define ATT_DEF_MT 1\n"
    "#define ATT_DEF_BN 32\n"
    "#endif\n"
    "#ifndef ATT_MT\n"
    "#define ATT_MT ATT_DEF_MT\n"
    "#endif\n"
    "#ifndef ATT_BN\n"
    "#define ATT_BN ATT_DEF_BN\n"
    "#endif\n"
    "#ifndef ATT_WARPS\n"
    "#define ATT_WARPS 4\n"
    "#endif\n"
    "#ifndef ATT_MINB\n"
    "#define ATT_MINB 2\n"
    "#endif\n"
    "#define MT ATT_MT\n"
    "#define BN ATT_BN\n"
    "#define NT (ATT_WARPS * 32)\n"
    "#define BM (ATT_WARPS * 16 * MT)\n"
    "#define STR (DP + 8)\n"
    "#define CH (DP / 8)\n"
    "#define DCH (HEAD_DIM / 8)\n"
    "#define TILE_BYTES (BN * STR * 2)\n"
    "#define STAGE_BYTES (2 * TILE_BYTES)\n"
    "#define Q_BYTES (BM * STR * 2)\n"
    "#define NEG_INF __int_as_float(0xff800000)\n"
    "// HEAD_DIM = 16k + 8 (SD 1.x's 40; 72): the padding is the last 8 of DP. S = Q K^T ends with an\n"
    "// m16n8k8 over the real 8 dims instead of an m16n8k16 over 8 real and 8 zero ones, and O += P V\n"
    "// skips the n-tile that is all padding: 80 instead of 96 tensor-core steps per tile at D = 40.\n"
    "#define HALF_LAST ((HEAD_DIM) % 16 == 8)\n"
    "\n"
    "// Tile configuration, readable by the host (cuModuleGetGlobal) to check it matches.\n"
    "extern \"C\" __constant__ int sdiff_attention_cfg[4] = {BM, BN, NT,\n"
    "    STAGE_BYTES + (Q_BYTES > STAGE_BYTES ? Q_BYTES : STAGE_BYTES)};\n"
    "\n"
    "#include \"mma.cuh\"\n"
    "\n"
    "// K/V tile t -> stage st (the caller commits the group). Rows >= Lk and columns >= HEAD_DIM\n"
    "// are zero-filled.\n"
    "static __device__ __forceinline__ void load_kv(u32 ks, const sd_half *kb, const sd_half *vb, const sd_half *k,\n"
    "                                               const sd_half *v, int kbase, int Lk, long long k_stride,\n"
    "                                               long long v_stride, int tid) {\n"
    "#pragma unroll\n"
    "    for (int it = 0; it < (BN * CH + NT - 1) / NT; ++it) {\n"
    "        const int i = tid + it * NT;\n"
    "        if ((BN * CH) % NT == 0 || i < BN * CH) {\n"
    "            const int r = i / CH, c = i - (i / CH) * CH;\n"
    "            const int kr = kbase + r;\n"
    "            const bool ok = kr < Lk && c < DCH;\n"
    "            const u32 off = (r * STR + c * 8) * 2;\n"
    "            cp_async16(ks + off, ok ? (const void *)(kb + (long long)kr * k_stride + c * 8) : (const void *)k,\n"
    "                       ok ? 16 : 0);\n"
    "            cp_async16(ks + TILE_BYTES + off, ok ? (const void *)(vb + (long long)kr * v_stride + c * 8) : (const void *)v,\n"
    "                       ok ? 16 : 0);\n"
    "        }\n"
    "    }\n"
    "}\n"
    "\n"
    "// Launch: grid (ceil(Lq/BM), B*H, 1), block (NT, 1, 1), dynamic shared memory\n"
    "// sdiff_attention_cfg[3] bytes (> 48 KB needs the function attribute raised).\n"
    "// q/k/v/o: base pointers of the [B, L, *] row views; element (b, i, h, d) of q is at\n"
    "// q[(b*Lq + i)*q_stride + h*HEAD_DIM + d] (k, v with Lk; o with Lq). Pointers 16-byte\n"
    "// aligned, strides multiples of 8 elements. scale_log2e = log2(e) / sqrt(HEAD_DIM).\n"
    "extern \"C\" __global__ void __launch_bounds__(NT, ATT_MINB)\n"
    "sdiff_attention_fwd(const sd_half *__restrict__ q, const sd_half *__restrict__ k, const sd_half *__restrict__ v,\n"
    "                    sd_half *__restrict__ o, int B, int H, int Lq, int Lk, long long q_stride, long long k_stride,\n"
    "                    long long v_stride, long long o_stride, float scale_log2e) {\n"
    "    pdl_begin();\n"
    "    extern __shared__ __align__(16) unsigned char smem[];\n"
    "    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;\n"
    "    const int bh = blockIdx.y, b = bh / H, h = bh - b * H;\n"
    "    const int q0 = blockIdx.x * BM;\n"
    "    const int wrow = warp * 16 * MT; // first row of this warp inside the block\n"
    "    const sd_half *qb = q + (long long)b * Lq * q_stride + h * HEAD_DIM;\n"
    "    const sd_half *kb = k + (long long)b * Lk * k_stride + h * HEAD_DIM;\n"
    "    const sd_half *vb = v + (long long)b * Lk * v_stride + h * HEAD_DIM;\n"
    "    sd_half *ob = o + (long long)b * Lq * o_stride + h * HEAD_DIM;\n"
    "    const u32 sbase = smem_addr(smem);\n"
    "    const u32 qsm = sbase + STAGE_BYTES;\n"
    "\n"
    "    // ---- Q tile -> shared (stage-1 region), one commit group.\n"
    "#pragma unroll\n"
    "    for (int it = 0; it < (BM * CH + NT - 1) / NT; ++it) {\n"
    "        const int i = tid + it * NT;\n"
    "        if ((BM * CH) % NT == 0 || i < BM * CH) {\n"
    "            const int r = i / CH, c = i - (i / CH) * CH;\n"
    "            const int qi = q0 + r;\n"
    "            const bool ok = qi < Lq && c < DCH;\n"
    "            cp_async16(qsm + (r * STR + c * 8) * 2, ok ? (const void *)(qb + (long long)qi * q_stride + c * 8) : (const void *)q,\n"
    "                       ok ? 16 : 0);\n"
    "        }\n"
    "    }\n"
    "    cp_commit();\n"
    "\n"
    "    int n_tiles = (Lk + BN - 1) / BN;\n"
    "#if CAUSAL\n"
    "    {\n"
    "        const int last = (q0 + BM < Lq ? q0 + BM : Lq); // rows < last; row i sees keys <= i\n"
    "        const int nt2 = (last + BN - 1) / BN;\n"
    "        n_tiles = nt2 < n_tiles ? nt2 : n_tiles;\n"
    "    }\n"
    "#endif\n"
    "\n"
    "\n"
    "    load_kv(sbase, kb, vb, k, v, 0, Lk, k_stride, v_stride, tid);\n"
    "    cp_commit();\n"
    "    cp_wait<1>(); // Q landed (K/V tile 0 may still be in flight)\n"
    "    __syncthreads();\n"
    "\n"
    "    // ---- Q fragments (mma A operand, row-major 16x16 per (mt, kk)) -> registers.\n"
    "    // ldmatrix.x4: lanes 0-15 address rows 0-15 at column kk*16, lanes 16-31 rows 0-15 at\n"
    "    // column kk*16+8; matrices 0..3 = (rows 0-7, c0-7), (rows 8-15, c0-7), (rows 0-7, c8-15),\n"
    "    // (rows 8-15, c8-15) = a0..a3 of the m16n8k16 A fragment.\n"
    "    u32 qf[MT][DP / 16][4];\n"
    "#pragma unroll\n"
    "    for (int mt = 0; mt < MT; ++mt)\n"
    "#pragma unroll\n"
    "        for (int kk = 0; kk < DP / 16; ++kk)\n"
    "            ldsm_x4(qsm + ((wrow + mt * 16 + (lane & 15)) * STR + kk * 16 + (lane >> 4) * 8) * 2, qf[mt][kk][0],\n"
    "                    qf[mt][kk][1], qf[mt][kk][2], qf[mt][kk][3]);\n"
    "    __syncthreads(); // all warps hold Q before stage 1 is overwritten\n"
    "\n"
    "    float oacc[MT][DP / 8][4];\n"
    "    float mrow[MT][2], lrow[MT][2];\n"
    "#pragma unroll\n"
    "    for (int mt = 0; mt < MT; ++mt) {\n"
    "#pragma unroll\n"
    "        for (int dt = 0; dt < DP / 8; ++dt)\n"
    "#pragma unroll\n"
    "            for (int e = 0; e < 4; ++e) oacc[mt][dt][e] = 0.f;\n"
    "        mrow[mt][0] = mrow[mt][1] = NEG_INF;\n"
    "        lrow[mt][0] = lrow[mt][1] = 0.f;\n"
    "    }\n"
    "    const int g = lane >> 2, t4 = lane & 3; // mma fragment coordinates: row g / g+8, cols 2*t4, 2*t4+1\n"
    "\n"
    "    // One barrier per tile: after it, tile j is visible to all warps and every warp has\n"
    "    // finished tile j-1, so stage (j+1)&1 (= that of tile j-1) can be refilled while tile j\n"
    "    // is computed.\n"
    "    for (int j = 0; j < n_tiles; ++j) {\n"
    "        cp_wait<0>(); // this thread's copies of tile j have landed\n"
    "        __syncthreads();\n"
    "        if (j + 1 < n_tiles) {\n"
    "            load_kv(sbase + ((j + 1) & 1) * STAGE_BYTES, kb, vb, k, v, (j + 1) * BN, Lk, k_stride, v_stride, tid);\n"
    "            cp_commit();\n"
    "        }\n"
    "        const u32 ks = sbase + (j & 1) * STAGE_BYTES, vs = ks + TILE_BYTES;\n"
    "\n"
    "        // ---- S = Q K^T for this warp's rows: s[mt][nt] is the 16x8 block (rows mt*16.., keys nt*8..).\n"
    "        // B operand (16 d x 8 keys, k-major) = rows of K as stored. ldmatrix.x4 (no trans):\n"
    "        // matrices (keys 0-7, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 0-7), (keys 8-15, d 8-15)\n"
    "        // = b0,b1 of key n-tile 2np and b0,b1 of n-tile 2np+1.\n"
    "        float s[MT][BN / 8][4];\n"
    "#pragma unroll\n"
    "        for (int mt = 0; mt < MT; ++mt)\n"
    "#pragma unroll\n"
    "            for (int nt = 0; nt < BN / 8; ++nt)\n"
    "#pragma unroll\n"
    "                for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;\n"
    "#pragma unroll\n"
    "        for (int kk = 0; kk < DP / 16; ++kk) {\n"
    "#pragma unroll\n"
    "            for (int np = 0; np < BN / 16; ++np) {\n"
    "                u32 b0, b1, b2, b3;\n"
    "                ldsm_x4(ks + ((np * 16 + (lane & 7) + ((lane >> 4) << 3)) * STR + kk * 16 + ((lane >> 3) & 1) * 8) * 2,\n"
    "                        b0, b1, b2, b3);\n"
    "#pragma unroll\n"
    "                for (int mt = 0; mt < MT; ++mt) {\n"
    "                    if (HALF_LAST && kk == DP / 16 - 1) { // keys x dims 0-7 of this step: b0, b2\n"
    "                        mma1688(s[mt][2 * np], qf[mt][kk], b0);\n"
    "                        mma1688(s[mt][2 * np + 1], qf[mt][kk], b2);\n"
    "                    } else {\n"
    "                        mma16816(s[mt][2 * np], qf[mt][kk], b0, b1);\n"
    "                        mma16816(s[mt][2 * np + 1], qf[mt][kk], b2, b3);\n"
    "                    }\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "\n"
    "        // ---- Masking (only on tiles that cross Lk or, causal, the diagonal of this warp).\n"
    "        const int kbase = j * BN;\n"
    "        bool need = kbase + BN > Lk;\n"
    "#if CAUSAL\n"
    "        need = need || (kbase + BN - 1 > q0 + wrow);\n"
    "#endif\n"
    "        if (need) {\n"
    "#pragma unroll\n"
    "            for (int mt = 0; mt < MT; ++mt)\n"
    "#pragma unroll\n"
    "                for (int nt = 0; nt < BN / 8; ++nt)\n"
    "#pragma unroll\n"
    "                    for (int e = 0; e < 4; ++e) {\n"
    "                        const int key = kbase + nt * 8 + 2 * t4 + (e & 1);\n"
    "                        bool off = key >= Lk;\n"
    "#if CAUSAL\n"
    "                        const int row = q0 + wrow + mt * 16 + g + 8 * (e >> 1);\n"
    "                        off = off || key > row;\n"
    "#endif\n"
    "                        if (off) s[mt][nt][e] = NEG_INF;\n"
    "                    }\n"
    "        }\n"
    "\n"
    "        // ---- Online softmax in the log2 domain. Each row lives in the 4 lanes of a quad.\n"
    "        // m: running max of scaled scores; l: this lane's partial row sum (quad-reduced at\n"
    "        // the end; alpha is quad-uniform so partial sums rescale correctly).\n"
    "#pragma unroll\n"
    "        for (int mt = 0; mt < MT; ++mt)\n"
    "#pragma unroll\n"
    "            for (int r = 0; r < 2; ++r) {\n"
    "                float mx = NEG_INF;\n"
    "#pragma unroll\n"
    "                for (int nt = 0; nt < BN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));\n"
    "                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));\n"
    "                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));\n"
    "                const float mnew = fmaxf(mrow[mt][r], mx * scale_log2e);\n"
    "                const float muse = mnew == NEG_INF ? 0.f : mnew; // fully masked so far: avoid inf-inf\n"
    "                const float alpha = ex2(mrow[mt][r] - muse);      // first tile: ex2(-inf) = 0\n"
    "                mrow[mt][r] = mnew;\n"
    "                float ls = 0.f;\n"
    "#pragma unroll\n"
    "                for (int nt = 0; nt < BN / 8; ++nt) {\n"
    "                    const float p0 = ex2(fmaf(s[mt][nt][2 * r], scale_log2e, -muse));\n"
    "                    const float p1 = ex2(fmaf(s[mt][nt][2 * r + 1], scale_log2e, -muse));\n"
    "                    s[mt][nt][2 * r] = p0;\n"
    "                    s[mt][nt][2 * r + 1] = p1;\n"
    "                    ls += p0 + p1;\n"
    "                }\n"
    "                lrow[mt][r] = lrow[mt][r] * alpha + ls;\n"
    "#pragma unroll\n"
    "                for (int dt = 0; dt < DP / 8; ++dt) {\n"
    "                    oacc[mt][dt][2 * r] *= alpha;\n"
    "                    oacc[mt][dt][2 * r + 1] *= alpha;\n"
    "                }\n"
    "            }\n"
    "\n"
    "        // ---- O += P V. The C fragments of key n-tiles 2kj, 2kj+1 are exactly the A fragment\n"
    "        // of k-step kj (a0 = rows g keys 2t4.., a1 = rows g+8, a2/a3 = keys +8), so P never\n"
    "        // touches shared memory. B operand (16 keys x 8 d) from V stored [key][d] (row-major\n"
    "        // B) needs ldmatrix.trans: matrices (keys 0-7, d 0-7), (keys 8-15, d 0-7),\n"
    "        // (keys 0-7, d 8-15), (keys 8-15, d 8-15) = b0,b1 of d-tile 2dp, b0,b1 of 2dp+1.\n"
    "#pragma unroll\n"
    "        for (int kj = 0; kj < BN / 16; ++kj) {\n"
    "            u32 pa[MT][4];\n"
    "#pragma unroll\n"
    "            for (int mt = 0; mt < MT; ++mt) {\n"
    "                pa[mt][0] = pack_h2(s[mt][2 * kj][0], s[mt][2 * kj][1]);\n"
    "                pa[mt][1] = pack_h2(s[mt][2 * kj][2], s[mt][2 * kj][3]);\n"
    "                pa[mt][2] = pack_h2(s[mt][2 * kj + 1][0], s[mt][2 * kj + 1][1]);\n"
    "                pa[mt][3] = pack_h2(s[mt][2 * kj + 1][2], s[mt][2 * kj + 1][3]);\n"
    "            }\n"
    "#pragma unroll\n"
    "            for (int dp = 0; dp < DP / 16; ++dp) {\n"
    "                u32 b0, b1, b2, b3;\n"
    "                ldsm_x4_t(vs + ((kj * 16 + (lane & 15)) * STR + dp * 16 + (lane >> 4) * 8) * 2, b0, b1, b2, b3);\n"
    "#pragma unroll\n"
    "                for (int mt = 0; mt < MT; ++mt) {\n"
    "                    mma16816(oacc[mt][2 * dp], pa[mt], b0, b1);\n"
    "                    if (!(HALF_LAST && dp == DP / 16 - 1)) mma16816(oacc[mt][2 * dp + 1], pa[mt], b2, b3); // else padding\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "    __syncthreads(); // the epilogue reuses the stage-0 region, which other warps may still read\n"
    "\n"
    "    // ---- Epilogue: O / l -> fp16 -> this warp's rows of the stage-0 region -> 16-byte stores.\n"
    "    // (No copies are pending: the last tile's wait drained them.)\n"
    "#pragma unroll\n"
    "    for (int mt = 0; mt < MT; ++mt)\n"
    "#pragma unroll\n"
    "        for (int r = 0; r < 2; ++r) {\n"
    "            float l = lrow[mt][r];\n"
    "            l += __shfl_xor_sync(0xffffffffu, l, 1);\n"
    "            l += __shfl_xor_sync(0xffffffffu, l, 2);\n"
    "            const float inv = l > 0.f ? 1.f / l : 0.f;\n"
    "            const u32 rowaddr = sbase + ((wrow + mt * 16 + g + 8 * r) * STR + 2 * t4) * 2;\n"
    "#pragma unroll\n"
    "            for (int dt = 0; dt < DP / 8; ++dt) {\n"
    "                const u32 val = pack_h2(oacc[mt][dt][2 * r] * inv, oacc[mt][dt][2 * r + 1] * inv);\n"
    "                asm volatile(\"st.shared.b32 [%0], %1;\\n\" ::\"r\"(rowaddr + dt * 16), \"r\"(val) : \"memory\");\n"
    "            }\n"
    "        }\n"
    "    __syncwarp();\n"
    "#pragma unroll\n"
    "    for (int it = 0; it < (16 * MT * DCH + 31) / 32; ++it) {\n"
    "        const int i = lane + it * 32;\n"
    "        if ((16 * MT * DCH) % 32 == 0 || i < 16 * MT * DCH) {\n"
    "            const int r = i / DCH, c = i - (i / DCH) * DCH;\n"
    "            const int row = q0 + wrow + r;\n"
    "            if (row < Lq) {\n"
    "                u32 x0, x1, x2, x3;\n"
    "                asm volatile(\"ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\\n\"\n"
    "                             : \"=r\"(x0), \"=r\"(x1), \"=r\"(x2), \"=r\"(x3)\n"
    "                             : \"r\"(sbase + ((wrow + r) * STR + c * 8) * 2) : \"memory\");\n"
    "                asm volatile(\"st.global.v4.b32 [%0], {%1,%2,%3,%4};\\n\" ::\"l\"(ob + (long long)row * o_stride + c * 8),\n"
    "                             \"r\"(x0), \"r\"(x1), \"r\"(x2), \"r\"(x3) : \"memory\");\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "}\n";

/* Launch configuration for sdiff_attention_fwd compiled with -DHEAD_DIM=head_dim. */
SDIFF__PRIVATE void sdiff__cu_attention_launch_dims(int head_dim, int Lq, int B, int H, unsigned grid[3], unsigned block[3],
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
/* END GENERATED: flash attention */

/* BEGIN GENERATED: flash attention (TMA, wgmma) (tools/kernels/gen_kernels.py) */
/* The FlashAttention-3-style kernel on Hopper (TMA, mbarriers, wgmma; fp16 in, fp32 accumulate; sm_90a only).
   Kernel (compile with NVRTC, mma.cuh given as a header, --gpu-architecture=sm_90a only,
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
static const char sdiff__cu_attention_sm90_src[] =
    "// sdiff attention forward on Hopper (sm_90a): FlashAttention-3's structure (a TMA producer\n"
    "// warpgroup with one issuing thread, mbarrier pipelines, asynchronous wgmma consumers), fp16\n"
    "// in/out, fp32 accumulate. Non-causal, head dims 40, 64 and 80: SD 1.x's 40 (its 4096- and\n"
    "// 16384-token self-attention is most of the UNet's attention time) and 80 (its 32x32 level), SD\n"
    "// 2.x's 64; 72 builds too (tools/kernels/bench_attn.cu checks it) but the library does not route\n"
    "// it. The mma.sync kernel (attn_kernel.cu) keeps the rest.\n"
    "// Plain NVRTC source: no CUDA headers (its one #include, mma.cuh, NVRTC gets as an in-memory header).\n"
    "//\n"
    "// Defines: HEAD_DIM (40, 64, 72 or 80, required). Optional overrides, for tuning sweeps (the host\n"
    "// helper sdiff__cu_attention_sm90_launch_dims mirrors the defaults; tests/test_cuda.c checks that\n"
    "// it does, through ATT_EXPECT_*): ATT_NCW (consumer warpgroups, 2 or 3), ATT_BN (keys per tile),\n"
    "// ATT_STAGES (K/V pipeline depth), ATT_PINGPONG (0: consumers issue without taking turns).\n"
    "//\n"
    "// Work split: a block owns BM = 64 * NCW consecutive queries of one (batch, head). Warpgroup 0 is\n"
    "// the producer: one thread issues the TMA copies (Q once, then K and V tile by tile, each into\n"
    "// its own pipeline stage) and the others leave at once. Consumer warpgroup c (1..NCW) owns 64\n"
    "// queries; warp k of it rows 16k..16k+15, so softmax rows never leave a warp. Per key tile j:\n"
    "//   S_j = Q K_j^T      wgmma m64nBNk16, Q and K from shared memory\n"
    "//   online softmax     in registers (log2 domain, as attn_kernel.cu)\n"
    "//   O += P_j V_j       wgmma m64nDk16, P from registers (S's accumulator layout is the A-fragment\n"
    "//                      layout), V from shared memory through the transpose bit (MN-major).\n"
    "// FlashAttention-3's intra-warpgroup overlap: S_{j+1} and P_j V_j are in flight together while the\n"
    "// warpgroup waits, and tile j+1's softmax runs while P_j V_j is still on the tensor cores; the\n"
    "// other consumer warpgroups fill the rest. No block-wide barrier in the loop: each stage has a\n"
    "// \"full\" mbarrier (the TMA's bytes arrived) and an \"empty\" one (every consumer warp retired the\n"
    "// wgmma that read it), separately for K and V, so K is recycled as soon as S is done.\n"
    "// Work units: block u of a 1-D grid takes query tile u (tiles numbered q-tile fastest, then batch\n"
    "// x head) with every key. Split tails (ATT_SPLIT=1 builds, which the library takes only for a\n"
    "// launch that splits): the tiles from n_full on, those that would leave a partial last wave of\n"
    "// blocks, are split instead into `splits` key ranges of whole key tiles, one block each (a tail\n"
    "// tile's parts are consecutive blocks). A part writes its unnormalised O, row maxima and row sums\n"
    "// (fp32, each consumer thread its own fragment) to `part`, counts itself in (one counter per tail\n"
    "// tile), and the part that counts last merges the parts in part order (the same sums whichever\n"
    "// finishes last), resets the counter for the next launch, and writes O. SD's 1024x1024 image has\n"
    "// 1376 tiles of 16384 tokens at D = 40: ten waves on 132 SMs and 56 tiles, which run as halves\n"
    "// (half a wave instead of a whole one; the host's rule: sdiff__cu_attention_sm90_launch_dims).\n"
    "// Shared memory: the TMA writes 128-byte rows (64 fp16) in the 128-byte swizzle: 16-byte chunk c\n"
    "// of row r at chunk c ^ (r & 7), every tile 1024-byte aligned. A head dim above 64 takes two such\n"
    "// \"atoms\" per tile (dims 0..63, then 64..127), each its own TMA box and its own [rows][128 bytes]\n"
    "// block. Dims past HEAD_DIM are outside the tensor map, so the TMA fills them with zeros (as it\n"
    "// does rows past Lq / Lk). That is wgmma's K-major 128-byte-swizzle layout for Q and K (the k-th 16\n"
    "// dims: atom k / 4, +32 bytes per k % 4), and its MN-major one for V (N = HEAD_DIM spans the atoms,\n"
    "// whose blocks are the descriptor's \"leading byte offset\" apart).\n"
    "\n"
    "#ifdef ATT_SPLIT_HEAD_DIM              // the library's variants: one -D each (the split tails' build)\n"
    "#define HEAD_DIM ATT_SPLIT_HEAD_DIM\n"
    "#define ATT_SPLIT 1\n"
    "#endif\n"
    "#ifndef HEAD_DIM\n"
    "#error \"HEAD_DIM must be defined\"\n"
    "#endif\n"
    "#ifndef ATT_SPLIT                      // 0: the split tails' code compiled out (n_full, splits, part and\n"
    "#define ATT_SPLIT 0                    // count ignored; every block a whole tile)\n"
    "#endif\n"
    "#if HEAD_DIM != 40 && HEAD_DIM != 64 && HEAD_DIM != 72 && HEAD_DIM != 80\n"
    "#error \"HEAD_DIM must be 40, 64, 72 or 80 (at most two 128-byte swizzle atoms; P V's wgmma is written for these N)\"\n"
    "#endif\n"
    "#if defined(CAUSAL) && CAUSAL\n"
    "#error \"attn_kernel_sm90.cu is non-causal only (causal attention runs on attn_kernel.cu)\"\n"
    "#endif\n"
    "#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)\n"
    "#error \"attn_kernel_sm90.cu needs --gpu-architecture=sm_90a (wgmma, TMA)\"\n"
    "#endif\n"
    "#ifndef ATT_NCW                        // measured (NOTES.md): 3 beat 2 at D <= 64; above, 3 x 160\n"
    "#define ATT_NCW (HEAD_DIM <= 64 ? 3 : 2) // registers spill and serialise the wgmmas: 2 x 240\n"
    "#endif\n"
    "#ifndef ATT_BN\n"
    "#define ATT_BN 128\n"
    "#endif\n"
    "#ifndef ATT_STAGES                     // measured (NOTES.md): 3 beat 2 at D = 64, equal at D = 40;\n"
    "#define ATT_STAGES (HEAD_DIM <= 64 ? 3 : 2) // rows of two atoms fit two stages in shared memory\n"
    "#endif\n"
    "#ifndef ATT_PINGPONG                   // consumer warpgroups issue their wgmmas in turn (FA3's scheduler barrier)\n"
    "#define ATT_PINGPONG 1\n"
    "#endif\n"
    "#define NCW ATT_NCW\n"
    "#define BN ATT_BN\n"
    "#define STAGES ATT_STAGES\n"
    "#define NT (128 * (NCW + 1))\n"
    "#define BM (64 * NCW)\n"
    "// Registers per thread after setmaxnreg: the launch gives every thread 65536 / NT (ptxas allocates\n"
    "// that much when a kernel uses setmaxnreg); the producer hands most of its share to the consumers.\n"
    "#define PRODUCER_REGS (NCW == 2 ? 24 : 32)\n"
    "#define CONSUMER_REGS (NCW == 2 ? 240 : 160)\n"
    "static_assert(NCW == 2 || NCW == 3, \"two or three consumer warpgroups (the register split is for those)\");\n"
    "static_assert(128 * (PRODUCER_REGS + NCW * CONSUMER_REGS) <= NT * ((65536 / NT) & ~7),\n"
    "              \"setmaxnreg would ask for more registers than the block holds (and wait forever)\");\n"
    "#define KSTEPS ((HEAD_DIM + 15) / 16)      // k16 steps of S = Q K^T (D = 40: 3, the last half zeros)\n"
    "#define ATOMS ((HEAD_DIM + 63) / 64)       // 128-byte swizzle atoms per row\n"
    "#define Q_ATOM (BM * 128)                  // one atom block of the Q tile\n"
    "#define TILE_ATOM (BN * 128)               // one atom block of a K or V tile\n"
    "#define Q_BYTES (ATOMS * Q_ATOM)\n"
    "#define TILE_BYTES (ATOMS * TILE_ATOM)\n"
    "#define BAR_OFF (Q_BYTES + 2 * STAGES * TILE_BYTES)\n"
    "#define SMEM_BYTES (BAR_OFF + 8 * (1 + 4 * STAGES) + 8 + 1024) // + 8: the split merge's flag; + 1024: the\n"
    "                                                               // base is rounded up to 1024\n"
    "#define PSTRIDE (HEAD_DIM / 2 + 4)         // floats of a consumer thread's partial: O, m[2], l[2]\n"
    "#define NEG_INF __int_as_float(0xff800000)\n"
    "static_assert(BN % 16 == 0 && BN <= 256, \"keys per tile: a multiple of 16, at most 256 (one TMA box)\");\n"
    "static_assert(BM <= 256, \"queries per block: one TMA box\");\n"
    "#ifdef ATT_EXPECT_SMEM // what the host's launch helper says (tests/test_cuda.c): a mismatch would hang\n"
    "static_assert(BM == ATT_EXPECT_BM && BN == ATT_EXPECT_BN && NT == ATT_EXPECT_NT && SMEM_BYTES == ATT_EXPECT_SMEM,\n"
    "              \"sdiff__cu_attention_sm90_launch_dims disagrees with the kernel's tiles\");\n"
    "#endif\n"
    "\n"
    "// Tile configuration, readable by a host program (tools/kernels/bench_attn.cu, cuModuleGetGlobal).\n"
    "extern \"C\" __constant__ int sdiff_attention_cfg[4] = {BM, BN, NT, SMEM_BYTES};\n"
    "\n"
    "#include \"mma.cuh\"\n"
    "\n"
    "// A whole tile from token `row` of (head h, item b): one box per atom, `atom` bytes apart in\n"
    "// shared memory; all of them complete `bar`.\n"
    "static __device__ __forceinline__ void tma_tile(u32 dst, u32 atom, const sd_tmap *map, int h, int row, int b, u32 bar) {\n"
    "#pragma unroll\n"
    "    for (int a = 0; a < ATOMS; ++a) tma_load4(dst + a * atom, map, 64 * a, h, row, b, bar);\n"
    "}\n"
    "\n"
    "// The split tails' exchange (below): a GPU-scope fence, the count, and loads that skip L1 (another\n"
    "// block wrote them).\n"
    "static __device__ __forceinline__ void fence_gpu() { asm volatile(\"fence.acq_rel.gpu;\\n\" ::: \"memory\"); }\n"
    "static __device__ __forceinline__ int count_in(int *p) {\n"
    "    int old;\n"
    "    asm volatile(\"atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;\\n\" : \"=r\"(old) : \"l\"(p) : \"memory\");\n"
    "    return old;\n"
    "}\n"
    "static __device__ __forceinline__ float ld_cg(const float *p) {\n"
    "    float v;\n"
    "    asm volatile(\"ld.global.cg.f32 %0, [%1];\\n\" : \"=f\"(v) : \"l\"(p) : \"memory\");\n"
    "    return v;\n"
    "}\n"
    "\n"
    "// d (64 x N, fp32) += A (64 x 16, fp16 registers a[4], mma.sync's m16n8k16 A-fragment layout per\n"
    "// warp) * B (16 x N, MN-major 128-byte-swizzle descriptor b: N contiguous, as V [keys][D] is;\n"
    "// N above 64 continues in the next atom block, the descriptor's leading byte offset further).\n"
    "template <int N> static __device__ __forceinline__ void wgmma_rs_tb(float *d, const u32 *a, u64 b) {\n"
    "    if constexpr (N == 40)\n"
    "        asm volatile(\"wgmma.mma_async.sync.aligned.m64n40k16.f32.f16.f16 {\"\n"
    "                     \"%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19}, {%20,%21,%22,%23}, %24, 1, 1, 1, 1;\\n\"\n"
    "                     : WG_D8(d, 0), WG_D8(d, 8), WG_D4(d, 16) : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"l\"(b));\n"
    "    else if constexpr (N == 64)\n"
    "        asm volatile(\"wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {\"\n"
    "                     \"%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, 1, 1, 1, 1;\\n\"\n"
    "                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24) : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"l\"(b));\n"
    "    else if constexpr (N == 72)\n"
    "        asm volatile(\"wgmma.mma_async.sync.aligned.m64n72k16.f32.f16.f16 {\"\n"
    "                     \"%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35}, {%36,%37,%38,%39}, %40, 1, 1, 1, 1;\\n\"\n"
    "                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D4(d, 32) : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"l\"(b));\n"
    "    else if constexpr (N == 80)\n"
    "        asm volatile(\"wgmma.mma_async.sync.aligned.m64n80k16.f32.f16.f16 {\"\n"
    "                     \"%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39}, {%40,%41,%42,%43}, %44, 1, 1, 1, 1;\\n\"\n"
    "                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32) : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"l\"(b));\n"
    "    else static_assert(N == 40, \"wgmma_rs_tb: N must be 40, 64, 72 or 80\");\n"
    "}\n"
    "\n"
    "// Launch: grid (n_full + (ceil(Lq/BM) * B*H - n_full) * splits, 1, 1), block (NT, 1, 1), dynamic\n"
    "// shared memory sdiff_attention_cfg[3]\n"
    "// bytes (raise the function attribute first). tq, tk, tv: tensor maps of q, k, v as\n"
    "// [B][L][H][HEAD_DIM], dims innermost first (d, h, token, b) so that the strides grow\n"
    "// (sdiff__cu_attention_sm90_tmaps: boxes of 64 dims x 1 head x BM tokens for q, BN for k and v,\n"
    "// 128-byte swizzle). o: element (b, i, h, d) at o[(b*Lq + i)*o_stride + h*HEAD_DIM + d],\n"
    "// o 16-byte aligned, o_stride a multiple of 8. Split tails (above; splits = 1 and n_full = every\n"
    "// tile: none): splits <= ceil(Lk/BN); part holds (tiles - n_full) * splits * NCW * 128 * PSTRIDE\n"
    "// floats; count (tiles - n_full) ints, zero before the first launch (the kernel leaves them zero).\n"
    "extern \"C\" __global__ void __launch_bounds__(NT, 1)\n"
    "sdiff_attention_fwd_tma(const __grid_constant__ sd_tmap tq, const __grid_constant__ sd_tmap tk,\n"
    "                        const __grid_constant__ sd_tmap tv, sd_half *__restrict__ o, int H, int Lq, int Lk,\n"
    "                        long long o_stride, float scale_log2e, int n_qt, int n_full, int splits,\n"
    "                        float *__restrict__ part, int *__restrict__ count) {\n"
    "    extern __shared__ __align__(1024) unsigned char smem[];\n"
    "    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;\n"
    "    const int u = blockIdx.x, tail = ATT_SPLIT && u >= n_full ? (u - n_full) / splits : -1;\n"
    "    const int ti = tail < 0 ? u : n_full + tail, np = tail < 0 ? 1 : splits, pi = tail < 0 ? 0 : (u - n_full) % splits;\n"
    "    const int bh = ti / n_qt, b = bh / H, h = bh - b * H;\n"
    "    const int q0 = (ti - bh * n_qt) * BM;\n"
    "    const int n_tiles = (Lk + BN - 1) / BN, j0 = pi * n_tiles / np, nl = (pi + 1) * n_tiles / np - j0; // key tiles\n"
    "    const u32 base = (smem_addr(smem) + 1023u) & ~1023u; // the swizzle repeats every 1024 bytes\n"
    "    const u32 qsm = base, ksm = base + Q_BYTES, vsm = ksm + STAGES * TILE_BYTES, bars = base + BAR_OFF;\n"
    "    // barriers: full_q, then per stage full_k, full_v, empty_k, empty_v\n"
    "    const u32 full_q = bars;\n"
    "#define FULL_K(s) (bars + 8 * (1 + 4 * (s)))\n"
    "#define FULL_V(s) (FULL_K(s) + 8)\n"
    "#define EMPTY_K(s) (FULL_K(s) + 16)\n"
    "#define EMPTY_V(s) (FULL_K(s) + 24)\n"
    "    if (tid == 0) {\n"
    "        mbar_init(full_q, 1);\n"
    "        for (int s = 0; s < STAGES; ++s) {\n"
    "            mbar_init(FULL_K(s), 1);\n"
    "            mbar_init(FULL_V(s), 1);\n"
    "            mbar_init(EMPTY_K(s), 4 * NCW); // one arrival per consumer warp\n"
    "            mbar_init(EMPTY_V(s), 4 * NCW);\n"
    "        }\n"
    "        asm volatile(\"fence.mbarrier_init.release.cluster;\\n\" ::: \"memory\");\n"
    "        tmap_prefetch(&tq); // while the previous kernel drains (before pdl_begin)\n"
    "        tmap_prefetch(&tk);\n"
    "        tmap_prefetch(&tv);\n"
    "    }\n"
    "    pdl_begin();\n"
    "    __syncthreads();\n"
    "\n"
    "    if (wg == 0) {\n"
    "        // ---- Producer. It needs few registers: give them to the consumers.\n"
    "        asm volatile(\"setmaxnreg.dec.sync.aligned.u32 %0;\\n\" ::\"n\"(PRODUCER_REGS));\n"
    "        if (tid == 0) {\n"
    "            mbar_expect_tx(full_q, Q_BYTES);\n"
    "            tma_tile(qsm, Q_ATOM, &tq, h, q0, b, full_q);\n"
    "            for (int j = 0; j < nl; ++j) {\n"
    "                const int s = j % STAGES;\n"
    "                const u32 ph = ((j / STAGES) & 1) ^ 1;\n"
    "                mbar_wait(EMPTY_K(s), ph);\n"
    "                mbar_expect_tx(FULL_K(s), TILE_BYTES);\n"
    "                tma_tile(ksm + s * TILE_BYTES, TILE_ATOM, &tk, h, (j0 + j) * BN, b, FULL_K(s));\n"
    "                mbar_wait(EMPTY_V(s), ph);\n"
    "                mbar_expect_tx(FULL_V(s), TILE_BYTES);\n"
    "                tma_tile(vsm + s * TILE_BYTES, TILE_ATOM, &tv, h, (j0 + j) * BN, b, FULL_V(s));\n"
    "            }\n"
    "        }\n"
    "        return;\n"
    "    }\n"
    "\n"
    "    // ---- Consumers.\n"
    "    asm volatile(\"setmaxnreg.inc.sync.aligned.u32 %0;\\n\" ::\"n\"(CONSUMER_REGS));\n"
    "    const int c = wg - 1, wrow = (warp & 3) * 16; // this warp's first row within its warpgroup's 64\n"
    "    const u32 qwg = qsm + c * 64 * 128; // this warpgroup's rows in Q's first atom block\n"
    "    float sacc[BN / 2], oacc[HEAD_DIM / 2];\n"
    "    float mrow[2] = {NEG_INF, NEG_INF}, lrow[2] = {0.f, 0.f}, alpha[2];\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < HEAD_DIM / 2; ++i) oacc[i] = 0.f;\n"
    "    const int g = lane >> 2, t4 = lane & 3; // fragment coordinates: rows g, g+8; columns 2*t4, 2*t4+1\n"
    "    u32 pa[BN / 4];\n"
    "\n"
    "    // S = Q K^T of the K tile in stage s (the first step overwrites S: scale_d = 0); not committed.\n"
    "    auto issue_s = [&](int s) {\n"
    "        const u32 ks = ksm + s * TILE_BYTES;\n"
    "#pragma unroll\n"
    "        for (int kk = 0; kk < KSTEPS; ++kk)\n"
    "            wgmma_ss<BN>(sacc, wgmma_desc_sw128(qwg + (kk >> 2) * Q_ATOM + (kk & 3) * 32),\n"
    "                         wgmma_desc_sw128(ks + (kk >> 2) * TILE_ATOM + (kk & 3) * 32), kk > 0);\n"
    "    };\n"
    "    // O += P V of the V tile in stage s: 16 keys (two 8-row groups, 2048 bytes) a step; not committed.\n"
    "    auto issue_pv = [&](int s) {\n"
    "        const u32 vs = vsm + s * TILE_BYTES;\n"
    "#pragma unroll\n"
    "        for (int kk = 0; kk < BN / 16; ++kk)\n"
    "            wgmma_rs_tb<HEAD_DIM>(oacc, pa + 4 * kk, wgmma_desc_sw128_mn(vs + kk * 2048, TILE_ATOM));\n"
    "    };\n"
    "    // Masking and online softmax of this block's tile j (key tile j0 + j): S_j (sacc) -> unnormalised\n"
    "    // P_j in sacc (fp32); m, l updated; alpha = the factor O must be scaled by before P_j V_j is added.\n"
    "    auto softmax_tile = [&](int j) {\n"
    "        const int kbase = (j0 + j) * BN;\n"
    "        if (kbase + BN > Lk) { // the keys past Lk are zeros from the TMA: mask them\n"
    "#pragma unroll\n"
    "            for (int i = 0; i < BN / 2; ++i)\n"
    "                if (kbase + (i >> 2) * 8 + 2 * t4 + (i & 1) >= Lk) sacc[i] = NEG_INF;\n"
    "        }\n"
    "        // Row r (g or g+8) of this lane: sacc[4n + 2r + {0,1}].\n"
    "#pragma unroll\n"
    "        for (int r = 0; r < 2; ++r) {\n"
    "            float mx = NEG_INF;\n"
    "#pragma unroll\n"
    "            for (int n = 0; n < BN / 8; ++n) mx = fmaxf(mx, fmaxf(sacc[4 * n + 2 * r], sacc[4 * n + 2 * r + 1]));\n"
    "            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));\n"
    "            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));\n"
    "            const float mnew = fmaxf(mrow[r], mx * scale_log2e); // finite: every tile has a real key\n"
    "            alpha[r] = ex2(mrow[r] - mnew);                       // first tile: ex2(-inf) = 0\n"
    "            mrow[r] = mnew;\n"
    "            float ls = 0.f;\n"
    "#pragma unroll\n"
    "            for (int n = 0; n < BN / 8; ++n) {\n"
    "                const float p0 = ex2(fmaf(sacc[4 * n + 2 * r], scale_log2e, -mnew));\n"
    "                const float p1 = ex2(fmaf(sacc[4 * n + 2 * r + 1], scale_log2e, -mnew));\n"
    "                sacc[4 * n + 2 * r] = p0;\n"
    "                sacc[4 * n + 2 * r + 1] = p1;\n"
    "                ls += p0 + p1;\n"
    "            }\n"
    "            lrow[r] = lrow[r] * alpha[r] + ls;\n"
    "        }\n"
    "    };\n"
    "    auto rescale_o = [&]() {\n"
    "#pragma unroll\n"
    "        for (int n = 0; n < HEAD_DIM / 8; ++n) {\n"
    "            oacc[4 * n] *= alpha[0];\n"
    "            oacc[4 * n + 1] *= alpha[0];\n"
    "            oacc[4 * n + 2] *= alpha[1];\n"
    "            oacc[4 * n + 3] *= alpha[1];\n"
    "        }\n"
    "    };\n"
    "    // P as the A operand: keys 16kk..16kk+15 are S's columns 2kk, 2kk+1 of 8, so the fragment\n"
    "    // {row g keys 2t4.., row g+8, row g keys 2t4+8.., row g+8} = sacc[8kk .. 8kk+7] packed.\n"
    "    auto pack_p = [&]() {\n"
    "#pragma unroll\n"
    "        for (int i = 0; i < BN / 4; ++i) pa[i] = pack_h2(sacc[2 * i], sacc[2 * i + 1]);\n"
    "    };\n"
    "    // FlashAttention-3's scheduler barrier: the consumer warpgroups take turns to issue their wgmmas\n"
    "    // (named barrier 1 + c is warpgroup c's turn: it waits there, and the warpgroup before it\n"
    "    // arrives when done issuing), so their softmaxes fall between each other's matrix products\n"
    "    // instead of all running at once.\n"
    "    auto turn_wait = [&]() {\n"
    "        if (ATT_PINGPONG) asm volatile(\"bar.sync %0, 256;\\n\" ::\"r\"(1 + c) : \"memory\");\n"
    "    };\n"
    "    auto turn_pass = [&]() {\n"
    "        if (ATT_PINGPONG) asm volatile(\"bar.arrive %0, 256;\\n\" ::\"r\"(1 + (c + 1) % NCW) : \"memory\");\n"
    "    };\n"
    "    // The first turn: warpgroup 0 arrives on its own barrier, so its first wait completes. The last\n"
    "    // warpgroup's last pass arrives on barrier 1 with no wait to meet it: harmless, as the block\n"
    "    // ends (FlashAttention-3 does the same; a split part's merge below uses other barriers); every\n"
    "    // warpgroup waits and passes nl times.\n"
    "    if (ATT_PINGPONG && c == 0) asm volatile(\"bar.arrive 1, 256;\\n\" ::: \"memory\");\n"
    "    // One arrival per warp on an \"empty\" barrier, after this warp's wgmma that read the stage retired.\n"
    "    auto release = [&](u32 bar) {\n"
    "        if (lane == 0) mbar_arrive(bar);\n"
    "    };\n"
    "\n"
    "    // Tile 0: S_0, softmax, P_0.\n"
    "    mbar_wait(full_q, 0);\n"
    "    mbar_wait(FULL_K(0), 0);\n"
    "    turn_wait();\n"
    "    wgmma_fence();\n"
    "    issue_s(0);\n"
    "    wgmma_commit();\n"
    "    turn_pass();\n"
    "    wgmma_wait<0>();\n"
    "    wgmma_pin<BN / 2>(sacc);\n"
    "    release(EMPTY_K(0));\n"
    "    softmax_tile(0);\n"
    "    pack_p();\n"
    "    // Tile j: S_j and P_{j-1} V_{j-1} in flight together; softmax of S_j while P V runs.\n"
    "    // Every wgmma in the loop is unconditional (a conditional one makes ptxas serialise them).\n"
    "    for (int j = 1; j < nl; ++j) {\n"
    "        const int s = j % STAGES, sp = (j - 1) % STAGES;\n"
    "        mbar_wait(FULL_K(s), (j / STAGES) & 1);\n"
    "        turn_wait();\n"
    "        wgmma_pin<BN / 2>(sacc);\n"
    "        wgmma_fence();\n"
    "        issue_s(s);\n"
    "        wgmma_commit();\n"
    "        rescale_o(); // alpha of tile j-1, before its P V is added\n"
    "        mbar_wait(FULL_V(sp), ((j - 1) / STAGES) & 1);\n"
    "        wgmma_pin<HEAD_DIM / 2>(oacc);\n"
    "        wgmma_fence();\n"
    "        issue_pv(sp);\n"
    "        wgmma_commit();\n"
    "        turn_pass();\n"
    "        wgmma_wait<1>(); // S_j\n"
    "        wgmma_pin<BN / 2>(sacc);\n"
    "        release(EMPTY_K(s));\n"
    "        softmax_tile(j);\n"
    "        wgmma_wait<0>(); // P_{j-1} V_{j-1}: pa and V_{j-1}'s stage are free\n"
    "        wgmma_pin<HEAD_DIM / 2>(oacc);\n"
    "        release(EMPTY_V(sp));\n"
    "        pack_p();\n"
    "    }\n"
    "    {\n"
    "        const int sl = (nl - 1) % STAGES;\n"
    "        rescale_o();\n"
    "        mbar_wait(FULL_V(sl), ((nl - 1) / STAGES) & 1);\n"
    "        wgmma_pin<HEAD_DIM / 2>(oacc);\n"
    "        wgmma_fence();\n"
    "        issue_pv(sl);\n"
    "        wgmma_commit();\n"
    "        wgmma_wait<0>();\n"
    "        wgmma_pin<HEAD_DIM / 2>(oacc);\n"
    "        release(EMPTY_V(sl));\n"
    "    }\n"
    "\n"
    "    // The rows' sums over the quad of lanes that holds them.\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < 2; ++r) {\n"
    "        lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);\n"
    "        lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);\n"
    "    }\n"
    "    if (np > 1) { // ---- A split tile's part: out to `part`; the last part to count in merges them all.\n"
    "        const int ct = tid - 128, nct = NCW * 128; // consumer thread: its slot k at [k][ct] (coalesced)\n"
    "        float *mine = part + ((long long)tail * splits + pi) * nct * PSTRIDE + ct;\n"
    "#pragma unroll\n"
    "        for (int i = 0; i < HEAD_DIM / 2; ++i) mine[i * nct] = oacc[i];\n"
    "#pragma unroll\n"
    "        for (int r = 0; r < 2; ++r) { mine[(HEAD_DIM / 2 + r) * nct] = mrow[r]; mine[(HEAD_DIM / 2 + 2 + r) * nct] = lrow[r]; }\n"
    "        fence_gpu(); // this thread's partial, visible on the GPU before the count below\n"
    "        const u32 flag = bars + 8 * (1 + 4 * STAGES);\n"
    "        asm volatile(\"bar.sync 5, %0;\\n\" ::\"n\"(NCW * 128) : \"memory\"); // every consumer's partial is out\n"
    "        if (ct == 0) {\n"
    "            const int last = count_in(count + tail) == splits - 1;\n"
    "            if (last) count[tail] = 0; // for the next launch (no other part touches it again)\n"
    "            asm volatile(\"st.shared.u32 [%0], %1;\\n\" ::\"r\"(flag), \"r\"(last) : \"memory\");\n"
    "        }\n"
    "        asm volatile(\"bar.sync 5, %0;\\n\" ::\"n\"(NCW * 128) : \"memory\");\n"
    "        u32 last;\n"
    "        asm volatile(\"ld.shared.u32 %0, [%1];\\n\" : \"=r\"(last) : \"r\"(flag) : \"memory\");\n"
    "        if (!last) return;\n"
    "        fence_gpu(); // the other parts' partials, seen after their counts\n"
    "        const float *all = part + (long long)tail * splits * nct * PSTRIDE + ct;\n"
    "        float mx[2] = {NEG_INF, NEG_INF};\n"
    "        for (int q = 0; q < splits; ++q)\n"
    "#pragma unroll\n"
    "            for (int r = 0; r < 2; ++r) mx[r] = fmaxf(mx[r], q == pi ? mrow[r] : ld_cg(all + (q * PSTRIDE + HEAD_DIM / 2 + r) * nct));\n"
    "        float o[HEAD_DIM / 2], l[2] = {0.f, 0.f};\n"
    "#pragma unroll\n"
    "        for (int i = 0; i < HEAD_DIM / 2; ++i) o[i] = 0.f;\n"
    "        for (int q = 0; q < splits; ++q) { // in part order: the same sums whichever part is last\n"
    "            const float *pq = all + q * PSTRIDE * nct;\n"
    "            float w[2];\n"
    "#pragma unroll\n"
    "            for (int r = 0; r < 2; ++r) {\n"
    "                w[r] = ex2((q == pi ? mrow[r] : ld_cg(pq + (HEAD_DIM / 2 + r) * nct)) - mx[r]);\n"
    "                l[r] += w[r] * (q == pi ? lrow[r] : ld_cg(pq + (HEAD_DIM / 2 + 2 + r) * nct));\n"
    "            }\n"
    "#pragma unroll\n"
    "            for (int i = 0; i < HEAD_DIM / 2; ++i) o[i] += w[(i >> 1) & 1] * (q == pi ? oacc[i] : ld_cg(pq + i * nct));\n"
    "        }\n"
    "#pragma unroll\n"
    "        for (int i = 0; i < HEAD_DIM / 2; ++i) oacc[i] = o[i];\n"
    "        lrow[0] = l[0];\n"
    "        lrow[1] = l[1];\n"
    "    }\n"
    "\n"
    "    // ---- Epilogue: O / l -> fp16 -> this warp's 16 rows of its warpgroup's Q tile (free now: its\n"
    "    // wgmmas retired), in the same swizzle and atom blocks (conflict-free) -> 16-byte stores of\n"
    "    // the real dims. Chunk n of a row (dims 8n..8n+7): atom n / 8, chunk n % 8 in it.\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < 2; ++r) {\n"
    "        const float inv = 1.f / lrow[r];\n"
    "        const int row = wrow + g + 8 * r;\n"
    "        const u32 rowaddr = qwg + row * 128 + t4 * 4;\n"
    "#pragma unroll\n"
    "        for (int n = 0; n < HEAD_DIM / 8; ++n) {\n"
    "            const u32 val = pack_h2(oacc[4 * n + 2 * r] * inv, oacc[4 * n + 2 * r + 1] * inv);\n"
    "            asm volatile(\"st.shared.b32 [%0], %1;\\n\" ::\"r\"(rowaddr + (n >> 3) * Q_ATOM + (((n & 7) ^ (row & 7)) << 4)),\n"
    "                         \"r\"(val) : \"memory\");\n"
    "        }\n"
    "    }\n"
    "    __syncwarp();\n"
    "    sd_half *ob = o + (long long)b * Lq * o_stride + h * HEAD_DIM;\n"
    "    constexpr int DCH = HEAD_DIM / 8; // 16-byte chunks of a row\n"
    "#pragma unroll\n"
    "    for (int it = 0; it < (16 * DCH + 31) / 32; ++it) {\n"
    "        const int i = lane + it * 32;\n"
    "        if ((16 * DCH) % 32 == 0 || i < 16 * DCH) {\n"
    "            const int r = wrow + i / DCH, ch = i % DCH, row = q0 + c * 64 + r;\n"
    "            if (row < Lq) {\n"
    "                u32 x0, x1, x2, x3;\n"
    "                asm volatile(\"ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\\n\"\n"
    "                             : \"=r\"(x0), \"=r\"(x1), \"=r\"(x2), \"=r\"(x3)\n"
    "                             : \"r\"(qwg + (ch >> 3) * Q_ATOM + r * 128 + (((ch & 7) ^ (r & 7)) << 4)) : \"memory\");\n"
    "                asm volatile(\"st.global.v4.b32 [%0], {%1,%2,%3,%4};\\n\" ::\"l\"(ob + (long long)row * o_stride + ch * 8),\n"
    "                             \"r\"(x0), \"r\"(x1), \"r\"(x2), \"r\"(x3) : \"memory\");\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "#undef FULL_K\n"
    "#undef FULL_V\n"
    "#undef EMPTY_K\n"
    "#undef EMPTY_V\n"
    "}\n";

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
SDIFF__PRIVATE int sdiff__cu_attention_sm90_tmaps(sdiff__cu_tmap_encode_fn encode, void *maps[3], const void *q,
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
/* END GENERATED: flash attention (TMA, wgmma) */

/* BEGIN GENERATED: implicit-GEMM convolution (tools/kernels/gen_kernels.py) */
/* The implicit-GEMM convolution (mma.sync m16n8k16, or wgmma on sm_90a; NHWC fp16, fp32 accumulate).
   Kernel (compile with NVRTC, mma.cuh given as a header, -DCONV_TILE=t: t in 0..2 (mma.sync) for
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
static const char sdiff__cu_conv2d_src[] =
    "// sdiff conv2d forward: implicit GEMM on tensor cores (mma.sync m16n8k16), NHWC fp16 in and out,\n"
    "// fp32 accumulation, bias and residual fused into the epilogue.\n"
    "// Plain NVRTC source: no CUDA headers (its one #include, mma.cuh, NVRTC gets as an in-memory header).\n"
    "//\n"
    "// As a GEMM: y[m, n] = sum_k A[m, k] * w[n, k], with\n"
    "//   m = (b, oy, ox) over M = B*Ho*Wo output pixels (y is [M, Co], row-major = NHWC),\n"
    "//   n over the Co output channels,\n"
    "//   k = (kh, kw, c) over K = KH*KW*C (w is [Co, KH, KW, C]: one output channel's K values are\n"
    "//   contiguous, so w is already the GEMM's k-major B operand),\n"
    "//   A[m, (kh, kw, c)] = x[b, oy*stride - pad + kh, ox*stride - pad + kw, c], 0 outside the image.\n"
    "// A is never materialised (that is the point: im2col would write and re-read KH*KW copies of x):\n"
    "// each K tile (CONV_BK = 64 by default) lies inside one tap (kh, kw) because C % CONV_BK == 0, so\n"
    "// a tile row is CONV_BK contiguous channels of one input pixel, or zeros (cp.async with src-size\n"
    "// 0) where the tap falls in the padding.\n"
    "// Epilogue, rounding as PyTorch's fp16 conv followed by a separate residual add:\n"
    "//   y = fp16(fp16(acc + bias) + res)   (bias and res optional; res may be y itself).\n"
    "//\n"
    "// Requirements (checked by the host): C % CONV_BK == 0; x and w 16-byte aligned; M*Co, B*H*W*C and\n"
    "// Co*K below 2^31. vec = 1 when Co % 8 == 0 and y, res are 16-byte aligned (16-byte stores);\n"
    "// otherwise the epilogue goes element by element.\n"
    "//\n"
    "// Tiles (-D overrides; the host helper sdiff__cu_conv2d_launch_dims mirrors the table):\n"
    "// CONV_BM x CONV_BN outputs per block, K in steps of CONV_BK, CONV_STAGES-deep cp.async pipeline,\n"
    "// CONV_WM x CONV_WN warps each owning a (BM/WM) x (BN/WN) sub-tile.\n"
    "// Shared memory (dynamic): CONV_STAGES stages of an A tile [BM][BK] and a B tile [BN][BK] (fp16).\n"
    "// With 128-byte rows (BK 64) chunk c (16 bytes) of row r is stored at chunk c ^ (r & 7), with\n"
    "// 64-byte rows (BK 32) at c ^ ((r >> 1) & 3): the 8 rows an ldmatrix reads at one logical chunk\n"
    "// then hit 8 different 16-byte bank groups (unswizzled they would share banks: an 8- or 4-way\n"
    "// conflict). The epilogue reuses the same memory as a [BM][BN+8] fp16 tile.\n"
    "// Measured on an H100 (tools/PERF.md): BK 64 with 3 stages beats BK 32 with 4 or 6 stages by\n"
    "// 3-17% on every SD shape, and BK 64 with 4 stages (one block of 128x128 per SM) loses.\n"
    "\n"
    "#include \"mma.cuh\"\n"
    "\n"
    "// The library's tile variants, -DCONV_TILE=t (single -D options per variant; the host's table in\n"
    "// sdiff__cu_conv2d_launch_dims mirrors this one). Any CONV_* given explicitly wins (benches sweep).\n"
    "// Tiles 0-2: mma.sync, any sm_80+ GPU. Tiles 3-5 (sm_90a only): wgmma, two warpgroups of 64 rows\n"
    "// each, one m64nBNk16 instruction per 16 of K (a warp's accumulators = 16 rows x BN, the same\n"
    "// fragment layout as WM = 8 warps of mma.sync tiles, so the epilogue is shared).\n"
    "#if !defined(CONV_TILE) || CONV_TILE == 0       // 128 x 128, 8 warps of 64 x 32: large M and Co\n"
    "#define CONV_T_BM 128\n"
    "#define CONV_T_BN 128\n"
    "#define CONV_T_WM 2\n"
    "#define CONV_T_WN 4\n"
    "#elif CONV_TILE == 1                            // 128 x 64, 4 warps of 64 x 32: Co = 64*k, not 128*k\n"
    "#define CONV_T_BM 128\n"
    "#define CONV_T_BN 64\n"
    "#define CONV_T_WM 2\n"
    "#define CONV_T_WN 2\n"
    "#elif CONV_TILE == 2                            // 64 x 64, 4 warps of 32 x 32: few output tiles\n"
    "#define CONV_T_BM 64\n"
    "#define CONV_T_BN 64\n"
    "#define CONV_T_WM 2\n"
    "#define CONV_T_WN 2\n"
    "#elif CONV_TILE >= 3 && CONV_TILE <= 5          // wgmma 128 x 256 (Co 256*k), x 160 (Co 320), x 128\n"
    "#define CONV_WGMMA 1\n"
    "#define CONV_T_BM 128\n"
    "#define CONV_T_BN (CONV_TILE == 3 ? 256 : CONV_TILE == 4 ? 160 : 128)\n"
    "#define CONV_T_WM 8\n"
    "#define CONV_T_WN 1\n"
    "#define CONV_T_STAGES 4\n"
    "#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)\n"
    "#error \"CONV_TILE 3-5 (wgmma) need --gpu-architecture=sm_90a\"\n"
    "#endif\n"
    "#else\n"
    "#error \"CONV_TILE must be 0..5\"\n"
    "#endif\n"
    "#ifndef CONV_WGMMA\n"
    "#define CONV_WGMMA 0\n"
    "#endif\n"
    "#ifndef CONV_T_STAGES\n"
    "#define CONV_T_STAGES 3\n"
    "#endif\n"
    "#ifndef CONV_BM\n"
    "#define CONV_BM CONV_T_BM\n"
    "#endif\n"
    "#ifndef CONV_BN\n"
    "#define CONV_BN CONV_T_BN\n"
    "#endif\n"
    "#ifndef CONV_WM\n"
    "#define CONV_WM CONV_T_WM\n"
    "#endif\n"
    "#ifndef CONV_WN\n"
    "#define CONV_WN CONV_T_WN\n"
    "#endif\n"
    "#ifndef CONV_STAGES\n"
    "#define CONV_STAGES CONV_T_STAGES\n"
    "#endif\n"
    "#ifndef CONV_MINB                      // blocks per SM the registers must allow\n"
    "#define CONV_MINB (CONV_WGMMA ? 1 : CONV_WM * CONV_WN == 8 ? 2 : 3)\n"
    "#endif\n"
    "#ifndef CONV_BK\n"
    "#define CONV_BK 64                     // K per tile: 64 or 32 (the host requires C % 64 == 0)\n"
    "#endif\n"
    "#define CONV_CPR (CONV_BK / 8)         // 16-byte chunks per tile row\n"
    "#define CONV_NT (CONV_WM * CONV_WN * 32)\n"
    "#define CONV_WTM (CONV_BM / CONV_WM)   // warp tile rows\n"
    "#define CONV_WTN (CONV_BN / CONV_WN)   // warp tile columns\n"
    "#define CONV_MT (CONV_WTM / 16)        // 16-row mma tiles per warp\n"
    "#define CONV_NTL (CONV_WTN / 8)        // 8-column mma tiles per warp\n"
    "#define CONV_A_BYTES (CONV_BM * CONV_BK * 2)\n"
    "#define CONV_ROW_BYTES (CONV_BK * 2)\n"
    "#define CONV_STAGE_BYTES ((CONV_BM + CONV_BN) * CONV_BK * 2)\n"
    "#define CONV_EPI_STR (CONV_BN + 8)     // halves; +8 keeps the epilogue's row writes conflict-light\n"
    "#define CONV_PIPE_BYTES (CONV_STAGES * CONV_STAGE_BYTES)\n"
    "#define CONV_EPI_BYTES (CONV_BM * CONV_EPI_STR * 2)\n"
    "#define CONV_SMEM (CONV_PIPE_BYTES > CONV_EPI_BYTES ? CONV_PIPE_BYTES : CONV_EPI_BYTES)\n"
    "#define CONV_ROWS_PER_PASS (CONV_NT / CONV_CPR)   // a pass copies one tile row per CONV_CPR threads\n"
    "#define CONV_A_ITERS (CONV_BM / CONV_ROWS_PER_PASS)\n"
    "#define CONV_B_ITERS (CONV_BN / CONV_ROWS_PER_PASS)\n"
    "\n"
    "static_assert(CONV_MT >= 1 && CONV_WTM % 16 == 0, \"warp tile rows must be a multiple of 16\");\n"
    "static_assert(CONV_NTL % 2 == 0, \"warp tile columns must be a multiple of 16 (B is loaded 16 columns at a time)\");\n"
    "static_assert(CONV_BM % CONV_ROWS_PER_PASS == 0 && CONV_BN % CONV_ROWS_PER_PASS == 0,\n"
    "              \"tile rows must be a multiple of threads/4\");\n"
    "static_assert(CONV_STAGES >= 2, \"at least two pipeline stages\");\n"
    "static_assert(CONV_BK == 32 || CONV_BK == 64, \"K tiles of 32 or 64\");\n"
    "static_assert(!CONV_WGMMA || (CONV_BK == 64 && CONV_STAGES >= 3 && CONV_WM * 16 == CONV_BM && CONV_WN == 1),\n"
    "              \"wgmma tiles: 128-byte swizzled rows (K tiles of 64), one 64-row warpgroup per 4 warps, >= 3 stages\");\n"
    "\n"
    "// Tile configuration, readable by the host (cuModuleGetGlobal) to check it matches its table.\n"
    "extern \"C\" __constant__ int sdiff_conv2d_cfg[4] = {CONV_BM, CONV_BN, CONV_NT, CONV_SMEM};\n"
    "\n"
    "// Byte offset of 16-byte chunk `chunk` of row `row` in a [rows][CONV_BK] fp16 tile: 64-byte rows\n"
    "// swizzle by (row >> 1) & 3, 128-byte rows by row & 7 (either way the 8 rows of one ldmatrix\n"
    "// read land in 8 different 16-byte bank groups).\n"
    "static __device__ __forceinline__ u32 conv_swz(int row, int chunk) {\n"
    "#if CONV_BK == 32\n"
    "    return (u32)(row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4));\n"
    "#else\n"
    "    return (u32)(row * 128 + ((chunk ^ (row & 7)) << 4));\n"
    "#endif\n"
    "}\n"
    "\n"
    "// Launch: grid (ceil(M/BM), ceil(Co/BN), 1), block (CONV_NT, 1, 1), dynamic shared memory\n"
    "// sdiff_conv2d_cfg[3] bytes (above 48 KB: raise the function's attribute first).\n"
    "extern \"C\" __global__ void __launch_bounds__(CONV_NT, CONV_MINB)\n"
    "sdiff_conv2d_fwd(const sd_half *__restrict__ x, const sd_half *__restrict__ w, const sd_half *__restrict__ bias,\n"
    "                 const sd_half *res, sd_half *y, int B, int H, int W, int C, int KH, int KW, int Ho, int Wo,\n"
    "                 int stride, int pad, int Co, int vec) {\n"
    "    pdl_begin();\n"
    "    extern __shared__ __align__(1024) unsigned char smem[]; // 1024: the 128-byte swizzle atom (wgmma)\n"
    "    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;\n"
    "    const int M = B * Ho * Wo, K = KH * KW * C, KT = K / CONV_BK;\n"
    "    const int m0 = blockIdx.x * CONV_BM, n0 = blockIdx.y * CONV_BN;\n"
    "    const u32 sbase = smem_addr(smem);\n"
    "    const int chunk = tid % CONV_CPR, trow = tid / CONV_CPR;\n"
    "\n"
    "    // ---- The rows this thread copies: for A, the top-left input pixel of each output pixel's\n"
    "    // window (iy0, ix0) and its image's offset; rows past M get iy0 far outside (always zeros).\n"
    "    int a_iy[CONV_A_ITERS], a_ix[CONV_A_ITERS];\n"
    "    long long a_off[CONV_A_ITERS];\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < CONV_A_ITERS; ++i) {\n"
    "        const int m = m0 + trow + i * CONV_ROWS_PER_PASS;\n"
    "        if (m < M) {\n"
    "            const int hw = Ho * Wo, b = m / hw, rem = m - b * hw, oy = rem / Wo, ox = rem - oy * Wo;\n"
    "            a_iy[i] = oy * stride - pad;\n"
    "            a_ix[i] = ox * stride - pad;\n"
    "            a_off[i] = (long long)b * H * W * C + chunk * 8;\n"
    "        } else {\n"
    "            a_iy[i] = -(1 << 30);\n"
    "            a_ix[i] = 0;\n"
    "            a_off[i] = 0;\n"
    "        }\n"
    "    }\n"
    "    const sd_half *b_src[CONV_B_ITERS];\n"
    "    bool b_ok[CONV_B_ITERS];\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < CONV_B_ITERS; ++i) {\n"
    "        const int n = n0 + trow + i * CONV_ROWS_PER_PASS;\n"
    "        b_ok[i] = n < Co;\n"
    "        b_src[i] = w + (long long)(b_ok[i] ? n : 0) * K + chunk * 8;\n"
    "    }\n"
    "\n"
    "    // ---- The load cursor: the next K tile to copy is at channel ld_c of tap (ld_kh, ld_kw).\n"
    "    int ld_k = 0, ld_c = 0, ld_kh = 0, ld_kw = 0;\n"
    "    auto load_tile = [&](int stage) {\n"
    "        const u32 as = sbase + stage * CONV_STAGE_BYTES, bs = as + CONV_A_BYTES;\n"
    "#pragma unroll\n"
    "        for (int i = 0; i < CONV_A_ITERS; ++i) {\n"
    "            const int iy = a_iy[i] + ld_kh, ix = a_ix[i] + ld_kw;\n"
    "            const bool ok = (unsigned)iy < (unsigned)H && (unsigned)ix < (unsigned)W;\n"
    "            const sd_half *src = ok ? x + a_off[i] + ((long long)iy * W + ix) * C + ld_c : x;\n"
    "            cp_async16(as + conv_swz(trow + i * CONV_ROWS_PER_PASS, chunk), src, ok ? 16 : 0);\n"
    "        }\n"
    "#pragma unroll\n"
    "        for (int i = 0; i < CONV_B_ITERS; ++i)\n"
    "            cp_async16(bs + conv_swz(trow + i * CONV_ROWS_PER_PASS, chunk), b_ok[i] ? b_src[i] + ld_k : w,\n"
    "                       b_ok[i] ? 16 : 0);\n"
    "        ld_k += CONV_BK;\n"
    "        ld_c += CONV_BK;\n"
    "        if (ld_c == C) {\n"
    "            ld_c = 0;\n"
    "            if (++ld_kw == KW) { ld_kw = 0; ++ld_kh; }\n"
    "        }\n"
    "    };\n"
    "\n"
    "    float acc[CONV_MT][CONV_NTL][4];\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < CONV_MT; ++i)\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < CONV_NTL; ++j)\n"
    "#pragma unroll\n"
    "            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;\n"
    "\n"
    "#if CONV_WGMMA\n"
    "    // wgmma main loop. wgmma runs asynchronously: each warpgroup keeps the previous K tile's\n"
    "    // instructions in flight while it issues the next, so a stage is free only two tiles later.\n"
    "    // Prefetch depth STAGES - 2: at the top of iteration kt every warpgroup has waited for its\n"
    "    // tile kt-2 wgmmas (wait<1> at the end of kt-1), so after the barrier the stage of tile kt-2\n"
    "    // is refilled with tile kt + STAGES - 2.\n"
    "#pragma unroll\n"
    "    for (int s = 0; s < CONV_STAGES - 2; ++s) {\n"
    "        if (s < KT) load_tile(s);\n"
    "        cp_commit();\n"
    "    }\n"
    "    if (sbase & 1023) __trap(); // the descriptors' swizzle assumes 1024-byte aligned tiles\n"
    "    float *d = &acc[0][0][0];\n"
    "    const u32 a_wg = (u32)((warp >> 2) * 64 * CONV_ROW_BYTES); // this warpgroup's 64 rows of A\n"
    "    for (int kt = 0; kt < KT; ++kt) {\n"
    "        cp_wait<CONV_STAGES - 3>();\n"
    "        fence_proxy_async(); // this thread's copies of tile kt, visible to wgmma\n"
    "        __syncthreads();\n"
    "        if (kt + CONV_STAGES - 2 < KT) load_tile((kt + CONV_STAGES - 2) % CONV_STAGES);\n"
    "        cp_commit();\n"
    "        const u32 as = sbase + (kt % CONV_STAGES) * CONV_STAGE_BYTES, bs = as + CONV_A_BYTES;\n"
    "        wgmma_pin<CONV_NTL * 4>(d);\n"
    "        wgmma_fence();\n"
    "#pragma unroll\n"
    "        for (int ks = 0; ks < CONV_BK / 16; ++ks) {\n"
    "            const u64 da = wgmma_desc_sw128(as + a_wg + ks * 32), db = wgmma_desc_sw128(bs + ks * 32);\n"
    "            wgmma_ss<CONV_BN>(d, da, db, 1);\n"
    "        }\n"
    "        wgmma_commit();\n"
    "        wgmma_wait<1>();\n"
    "        wgmma_pin<CONV_NTL * 4>(d);\n"
    "    }\n"
    "    wgmma_wait<0>();\n"
    "    wgmma_pin<CONV_NTL * 4>(d);\n"
    "    const int wm = warp, wn = 0;\n"
    "#else\n"
    "#pragma unroll\n"
    "    for (int s = 0; s < CONV_STAGES - 1; ++s) {\n"
    "        if (s < KT) load_tile(s);\n"
    "        cp_commit(); // always: the wait below counts groups\n"
    "    }\n"
    "    const int wm = warp / CONV_WN, wn = warp - (warp / CONV_WN) * CONV_WN;\n"
    "    const int a_row = wm * CONV_WTM + (lane & 7) + ((lane >> 3) & 1) * 8, a_half = lane >> 4;\n"
    "    const int b_row = wn * CONV_WTN + (lane & 7) + (lane >> 4) * 8, b_half = (lane >> 3) & 1;\n"
    "\n"
    "    // One barrier per K tile: after it, tile kt has landed for every thread and every warp is done\n"
    "    // with tile kt-1, whose stage is the one refilled (with tile kt + STAGES - 1) right away.\n"
    "    for (int kt = 0; kt < KT; ++kt) {\n"
    "        cp_wait<CONV_STAGES - 2>();\n"
    "        __syncthreads();\n"
    "        if (kt + CONV_STAGES - 1 < KT) load_tile((kt + CONV_STAGES - 1) % CONV_STAGES);\n"
    "        cp_commit();\n"
    "        const u32 as = sbase + (kt % CONV_STAGES) * CONV_STAGE_BYTES, bs = as + CONV_A_BYTES;\n"
    "#pragma unroll\n"
    "        for (int ks = 0; ks < CONV_BK / 16; ++ks) {\n"
    "            // A fragments: ldmatrix.x4 matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7,\n"
    "            // k 8-15), (rows 8-15, k 8-15) = a0..a3 of the m16n8k16 A operand.\n"
    "            u32 af[CONV_MT][4];\n"
    "#pragma unroll\n"
    "            for (int mt = 0; mt < CONV_MT; ++mt)\n"
    "                ldsm_x4(as + conv_swz(a_row + mt * 16, ks * 2 + a_half), af[mt][0], af[mt][1], af[mt][2], af[mt][3]);\n"
    "            // B fragments, 16 columns at a time: matrices (n 0-7, k 0-7), (n 0-7, k 8-15),\n"
    "            // (n 8-15, k 0-7), (n 8-15, k 8-15) = b0, b1 of column tile 2p and of 2p+1.\n"
    "            u32 bf[CONV_NTL][2];\n"
    "#pragma unroll\n"
    "            for (int p = 0; p < CONV_NTL / 2; ++p)\n"
    "                ldsm_x4(bs + conv_swz(b_row + p * 16, ks * 2 + b_half), bf[2 * p][0], bf[2 * p][1], bf[2 * p + 1][0],\n"
    "                        bf[2 * p + 1][1]);\n"
    "#pragma unroll\n"
    "            for (int mt = 0; mt < CONV_MT; ++mt)\n"
    "#pragma unroll\n"
    "                for (int nt = 0; nt < CONV_NTL; ++nt) mma16816(acc[mt][nt], af[mt], bf[nt][0], bf[nt][1]);\n"
    "        }\n"
    "    }\n"
    "#endif\n"
    "    cp_wait<0>();\n"
    "    __syncthreads(); // the epilogue tile overwrites the pipeline stages\n"
    "\n"
    "    // ---- Epilogue 1: acc + bias, rounded to fp16, into the [BM][BN+8] tile. Fragment layout:\n"
    "    // acc[mt][nt] = rows g and g+8 of m-tile mt, columns 2*t4 and 2*t4+1 of n-tile nt.\n"
    "    const int g = lane >> 2, t4 = lane & 3;\n"
    "#pragma unroll\n"
    "    for (int nt = 0; nt < CONV_NTL; ++nt) {\n"
    "        const int col = wn * CONV_WTN + nt * 8 + 2 * t4, n = n0 + col;\n"
    "        const float b0 = bias && n < Co ? half_to_float(bias[n]) : 0.f;\n"
    "        const float b1 = bias && n + 1 < Co ? half_to_float(bias[n + 1]) : 0.f;\n"
    "#pragma unroll\n"
    "        for (int mt = 0; mt < CONV_MT; ++mt) {\n"
    "            const int row = wm * CONV_WTM + mt * 16 + g;\n"
    "            const u32 a0 = sbase + (row * CONV_EPI_STR + col) * 2, a1 = a0 + 8 * CONV_EPI_STR * 2;\n"
    "            asm volatile(\"st.shared.b32 [%0], %1;\\n\" ::\"r\"(a0), \"r\"(pack_h2(acc[mt][nt][0] + b0, acc[mt][nt][1] + b1))\n"
    "                         : \"memory\");\n"
    "            asm volatile(\"st.shared.b32 [%0], %1;\\n\" ::\"r\"(a1), \"r\"(pack_h2(acc[mt][nt][2] + b0, acc[mt][nt][3] + b1))\n"
    "                         : \"memory\");\n"
    "        }\n"
    "    }\n"
    "    __syncthreads();\n"
    "\n"
    "    // ---- Epilogue 2: 8 outputs (16 bytes) per step, plus the residual, out to y.\n"
    "#pragma unroll 4\n"
    "    for (int i = tid; i < CONV_BM * (CONV_BN / 8); i += CONV_NT) {\n"
    "        const int r = i / (CONV_BN / 8), c8 = (i - r * (CONV_BN / 8)) * 8, m = m0 + r, n = n0 + c8;\n"
    "        if (m >= M || n >= Co) continue;\n"
    "        u32 v[4];\n"
    "        asm volatile(\"ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\\n\"\n"
    "                     : \"=r\"(v[0]), \"=r\"(v[1]), \"=r\"(v[2]), \"=r\"(v[3])\n"
    "                     : \"r\"(sbase + (r * CONV_EPI_STR + c8) * 2) : \"memory\");\n"
    "        const long long o = (long long)m * Co + n;\n"
    "        store_out8(y + o, res ? res + o : nullptr, Co - n, v, vec);\n"
    "    }\n"
    "}\n";

/* Launch configuration for sdiff_conv2d_fwd compiled with -DCONV_TILE=tile, M = B*Ho*Wo. */
SDIFF__PRIVATE void sdiff__cu_conv2d_launch_dims(int tile, long long M, int Co, unsigned grid[3], unsigned block[3],
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
SDIFF__PRIVATE int sdiff__cu_conv2d_pick_tile(long long M, int Co, int n_sm, int wgmma) {
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
/* END GENERATED: implicit-GEMM convolution */

/* BEGIN GENERATED: implicit-GEMM convolution (TMA, wgmma) (tools/kernels/gen_kernels.py) */
/* The implicit-GEMM convolution on Hopper (a TMA producer, mbarriers, wgmma consumers; sm_90a only).
   Kernel (compile with NVRTC, mma.cuh given as a header, --gpu-architecture=sm_90a only,
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
static const char sdiff__cu_conv2d_tma_src[] =
    "// sdiff conv2d forward on Hopper (sm_90a): the implicit GEMM of conv_kernel.cu (y[m, n] = sum_k\n"
    "// A[m, k] w[n, k], m = (b, oy, ox), k = (kh, kw, c); read that file's header first), fed by the\n"
    "// TMA instead of cp.async, with the attention kernel's structure (attn_kernel_sm90.cu): one\n"
    "// producer warpgroup whose first thread issues the copies, two consumer warpgroups of BM/2 output\n"
    "// rows each, an mbarrier pipeline between them and no block-wide barrier in the main loop.\n"
    "// Plain NVRTC source: no CUDA headers (its one #include, mma.cuh, NVRTC gets as an in-memory header).\n"
    "//\n"
    "// Why the TMA makes the A operand cheap here: a tile of BM output pixels is a box of the output\n"
    "// image: BM pixels of one row, or whole rows (bw = Wo, bh = BM / Wo), or whole images (bw = Wo,\n"
    "// bh = Ho, bn = BM / (Wo * Ho)). The K tile of tap (kh, kw) and channels c..c+63 is then a box of\n"
    "// the input: at stride 1 the same box shifted by (kw - pad, kh - pad), one 4-D TMA copy with\n"
    "// coordinates (c, ox0 - pad + kw, oy0 - pad + kh, b0); at stride s the box s times as large\n"
    "// whose every s-th pixel and row the TMA takes (the tensor map's element strides), from (c, s ox0\n"
    "// - pad + kw, s oy0 - pad + kh, b0): SD's downsamplers need no im2col. Coordinates outside the\n"
    "// image are the padding: the TMA writes zeros there, with no per-row bounds checks. The weights\n"
    "// [Co][K] are a 2-D box (64 of K x BN rows) per K tile. Both land in the 128-byte swizzle (16-byte chunk c of\n"
    "// row r at chunk c ^ (r & 7)), which is wgmma's K-major layout, so consumers read them directly.\n"
    "// The host (sdiff__cu_conv2d_tma_box, _maps) picks the box shape and makes the two tensor maps; shapes\n"
    "// whose output rows do not tile into such boxes (odd widths) stay on conv_kernel.cu.\n"
    "//\n"
    "// Traffic: every K tile reads BM x 64 values of x and BN x 64 of w from L2, so the L2 traffic per\n"
    "// multiply-add is 1/BN + 1/BM; on the VAE's large levels that, not the tensor cores, is the limit\n"
    "// (tools/PERF.md, S8), hence BM = 256 for the 128-channel convolutions there (BN = 256 would need\n"
    "// twice the accumulator registers).\n"
    "//\n"
    "// Split-K for grids too small to fill the GPU (SD's 16x16 and 8x8 levels: 64 and 16 tiles of\n"
    "// 128 x 80 on 132 SMs): the host launches clusters of S blocks along x (S = 1..8), block `rank` of a\n"
    "// cluster sums K tiles [rank*KT/S, (rank+1)*KT/S) of the same output tile; the partial sums meet in\n"
    "// distributed shared memory, where block `rank` adds up rows [rank*BM/S, (rank+1)*BM/S) of all S\n"
    "// partials in rank order (the same order every run) and writes them. No workspace, no second kernel.\n"
    "//\n"
    "// Epilogue as conv_kernel.cu's (same rounding): y = fp16(fp16(acc + bias) + res).\n"
    "//\n"
    "// A nearest 2x upsampling followed by a 3x3 convolution (SD's upsamplers) is, for each of the four\n"
    "// output phases (oy % 2, ox % 2), a 2x2 convolution of the small image with summed weights (the\n"
    "// host sums them, sdiff_im2col's upsample_conv_weights): phase = 0..3 makes output pixel (b, i, j)\n"
    "// of the Ho x Wo grid land at (b, 2i + phase / 2, 2j + phase % 2) of a [B][2Ho][2Wo][Co] y (and\n"
    "// res); 4/9 of the multiply-adds, and the upsampled tensor is never written.\n"
    "//\n"
    "// Defines: CONV_TILE (0..4, the library's variants: the table below, mirrored by the host's\n"
    "// sdiff__cu_conv2d_tma_tiles; tests/test_cuda.c checks they agree through CONV_EXPECT_*).\n"
    "// Overrides, for sweeps: CONV_BM (output pixels per block: 128, or 256 with BN <= 128), CONV_BN\n"
    "// (output channels per block: 64, 80, 128, 160 or 256), CONV_STAGES (pipeline depth; default: as\n"
    "// many as fit in 227 KB, at most 8).\n"
    "\n"
    "#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)\n"
    "#error \"conv_kernel_sm90.cu needs --gpu-architecture=sm_90a (wgmma, TMA)\"\n"
    "#endif\n"
    "#if !defined(CONV_TILE) && !defined(CONV_BN)\n"
    "#error \"CONV_TILE (or CONV_BN) must be defined\"\n"
    "#endif\n"
    "#ifndef CONV_TILE\n"
    "#define CONV_TILE 0\n"
    "#endif\n"
    "#if CONV_TILE < 0 || CONV_TILE > 4\n"
    "#error \"CONV_TILE must be 0..4\"\n"
    "#endif\n"
    "#ifndef CONV_BM                                 // tiles 0-3: 128 x 80, 128, 160, 256; tile 4: 256 x 128\n"
    "#define CONV_BM (CONV_TILE == 4 ? 256 : 128)\n"
    "#endif\n"
    "#ifndef CONV_BN\n"
    "#define CONV_BN (CONV_TILE == 0 ? 80 : CONV_TILE == 1 || CONV_TILE == 4 ? 128 : CONV_TILE == 2 ? 160 : 256)\n"
    "#endif\n"
    "#define BM CONV_BM                              // output pixels per block: two consumer warpgroups\n"
    "#define MT (BM / 128)                           // 64-row wgmma tiles per consumer warpgroup\n"
    "#define BN CONV_BN\n"
    "#define NT 384                                  // producer warpgroup + two consumer warpgroups\n"
    "#define A_BYTES (BM * 128)                      // one K tile of A: BM rows of 64 fp16\n"
    "#define STAGE_BYTES ((BM + BN) * 128)\n"
    "#define BAR_BYTES 256                           // room for 2 mbarriers per stage\n"
    "#ifndef CONV_STAGES\n"
    "#define CONV_STAGES_FIT ((227 * 1024 - 1024 - BAR_BYTES) / STAGE_BYTES)\n"
    "#define CONV_STAGES (CONV_STAGES_FIT > 8 ? 8 : CONV_STAGES_FIT)\n"
    "#endif\n"
    "#define STAGES CONV_STAGES\n"
    "#define EPI_STR (BN + 8)                        // halves per row of the epilogue tile\n"
    "#define PART_STR (BN + 4)                       // floats per row of a split-K partial tile\n"
    "#define PIPE_BYTES (STAGES * STAGE_BYTES)\n"
    "#define SMEM_BYTES (PIPE_BYTES + BAR_BYTES + 1024) // + 1024: the base is rounded up to 1024\n"
    "#define PRODUCER_REGS 40\n"
    "#define CONSUMER_REGS 232\n"
    "static_assert(BN == 64 || BN == 80 || BN == 128 || BN == 160 || BN == 256, \"CONV_BN: 64, 80, 128, 160 or 256\");\n"
    "static_assert(BM == 128 || (BM == 256 && BN <= 128), \"CONV_BM: 128, or 256 with BN <= 128 (accumulator registers)\");\n"
    "static_assert(STAGES >= 2 && 16 * STAGES <= BAR_BYTES, \"2..16 stages\");\n"
    "static_assert(BM * EPI_STR * 2 <= PIPE_BYTES && BM * PART_STR * 4 <= PIPE_BYTES,\n"
    "              \"the epilogue and split-K tiles reuse the pipeline's memory\");\n"
    "static_assert(128 * (PRODUCER_REGS + 2 * CONSUMER_REGS) <= NT * ((65536 / NT) & ~7),\n"
    "              \"setmaxnreg would ask for more registers than the block holds (and wait forever)\");\n"
    "\n"
    "#ifdef CONV_EXPECT_SMEM // what the host's tables say (tests/test_cuda.c): a mismatch would fault\n"
    "static_assert(BM == CONV_EXPECT_BM && BN == CONV_EXPECT_BN && SMEM_BYTES == CONV_EXPECT_SMEM,\n"
    "              \"sdiff__cu_conv2d_tma_tiles or _launch_dims disagrees with the kernel\");\n"
    "#endif\n"
    "\n"
    "// Tile configuration, readable by the host (cuModuleGetGlobal) to check it matches its table.\n"
    "extern \"C\" __constant__ int sdiff_conv2d_tma_cfg[4] = {BM, BN, NT, SMEM_BYTES};\n"
    "\n"
    "#include \"mma.cuh\"\n"
    "\n"
    "// Launch: grid (S, ceil(M / BM), ceil(Co / BN)) in clusters of (S, 1, 1), S <= KT (S = 1: a plain\n"
    "// launch), block (NT, 1, 1), dynamic shared memory sdiff_conv2d_tma_cfg[3] bytes (raise the\n"
    "// function attribute first).\n"
    "// ta: x [B][H][W][C] as a 4-D map, dims innermost first (C, W, H, B), box (64, bw, bh, bn) with\n"
    "// bw * bh * bn = BM; tb: w [Co][K] as 2-D (K, Co), box (64, BN); both 128-byte swizzle, zeros\n"
    "// outside. The output tile of block (., y, .) starts at pixel m0 = y * BM = (b0, oy0, ox0) and is that\n"
    "// box of the output: the host guarantees Wo % bw == 0 and Ho % bh == 0, so m0's box never wraps.\n"
    "// KT = KH * KW * C / 64 K tiles; C % 64 == 0. y [M][Co] (phase < 0) or an upsampling's phase\n"
    "// (above); res (optional): row m / res_px, res_ld values apart, for output pixel m (phase < 0:\n"
    "// res_px = 1, res_ld = Co is y's layout; res_px = Ho * Wo is one row per image, added to all its\n"
    "// pixels: a resnet's time embedding), y's layout when phase >= 0; vec as in conv_kernel.cu (res_ld\n"
    "// % 8 == 0 too). Input pixel of tap (kh, kw) for output (oy, ox): (stride oy - padh + kh, stride ox -\n"
    "// padw + kw), ta made with that stride (sdiff__cu_conv2d_tma_maps).\n"
    "extern \"C\" __global__ void __launch_bounds__(NT, 1)\n"
    "sdiff_conv2d_fwd_tma(const __grid_constant__ sd_tmap ta, const __grid_constant__ sd_tmap tb,\n"
    "                     const sd_half *__restrict__ bias, const sd_half *res, sd_half *y, int M, int Ho, int Wo, int C,\n"
    "                     int KW, int KT, int padh, int padw, int stride, int Co, int vec, int phase, int res_px,\n"
    "                     int res_ld) {\n"
    "    extern __shared__ __align__(1024) unsigned char smem[];\n"
    "    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;\n"
    "    const int m0 = blockIdx.y * BM, n0 = blockIdx.z * BN;\n"
    "    const int split = (int)cluster_size(), rank = (int)cluster_rank();\n"
    "    const int kt0 = rank * KT / split, nkt = (rank + 1) * KT / split - kt0; // this block's K tiles\n"
    "    const u32 base = (smem_addr(smem) + 1023u) & ~1023u; // the swizzle repeats every 1024 bytes\n"
    "    const u32 bars = base + PIPE_BYTES;\n"
    "#define FULL(s) (bars + 16 * (s))\n"
    "#define EMPTY(s) (bars + 16 * (s) + 8)\n"
    "    if (tid == 0) {\n"
    "        for (int s = 0; s < STAGES; ++s) {\n"
    "            mbar_init(FULL(s), 1);\n"
    "            mbar_init(EMPTY(s), 8); // one arrival per consumer warp\n"
    "        }\n"
    "        asm volatile(\"fence.mbarrier_init.release.cluster;\\n\" ::: \"memory\");\n"
    "        tmap_prefetch(&ta); // while the previous kernel drains (before pdl_begin)\n"
    "        tmap_prefetch(&tb);\n"
    "    }\n"
    "    pdl_begin();\n"
    "    __syncthreads();\n"
    "\n"
    "    if (wg == 0) {\n"
    "        // ---- Producer: K tile kt = tap (kh, kw), channels c..c+63, into stage (kt - kt0) % STAGES.\n"
    "        asm volatile(\"setmaxnreg.dec.sync.aligned.u32 %0;\\n\" ::\"n\"(PRODUCER_REGS));\n"
    "        if (tid == 0) {\n"
    "            const int hw = Ho * Wo, b0 = m0 / hw, oy0 = (m0 - b0 * hw) / Wo, ox0 = m0 - b0 * hw - oy0 * Wo;\n"
    "            const int cpt = C / 64, tap = kt0 / cpt;\n"
    "            int c = (kt0 - tap * cpt) * 64, kh = tap / KW, kw = tap - kh * KW;\n"
    "            for (int i = 0; i < nkt; ++i) {\n"
    "                const int s = i % STAGES;\n"
    "                mbar_wait(EMPTY(s), ((i / STAGES) & 1) ^ 1);\n"
    "                const u32 dst = base + s * STAGE_BYTES;\n"
    "                mbar_expect_tx(FULL(s), STAGE_BYTES);\n"
    "                tma_load4(dst, &ta, c, stride * ox0 - padw + kw, stride * oy0 - padh + kh, b0, FULL(s));\n"
    "                tma_load2(dst + A_BYTES, &tb, (kt0 + i) * 64, n0, FULL(s));\n"
    "                c += 64;\n"
    "                if (c == C) {\n"
    "                    c = 0;\n"
    "                    if (++kw == KW) { kw = 0; ++kh; }\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "        if (split > 1) split_k_producer_sync(); // the partials' exchange below\n"
    "        return;\n"
    "    }\n"
    "\n"
    "    // ---- Consumers: warpgroup cw owns output rows cw*BM/2 .. +BM/2, all BN columns, as MT wgmma\n"
    "    // tiles of 64 rows (acc[mt]).\n"
    "    asm volatile(\"setmaxnreg.inc.sync.aligned.u32 %0;\\n\" ::\"n\"(CONSUMER_REGS));\n"
    "    const int cw = wg - 1;\n"
    "    float acc[MT][BN / 2];\n"
    "#pragma unroll\n"
    "    for (int mt = 0; mt < MT; ++mt)\n"
    "#pragma unroll\n"
    "        for (int i = 0; i < BN / 2; ++i) acc[mt][i] = 0.f;\n"
    "    // wgmma runs asynchronously: tile kt's instructions stay in flight while the warpgroup waits for\n"
    "    // tile kt+1, and a stage is handed back once the wgmmas that read it have retired (wait<1>\n"
    "    // after issuing the next tile).\n"
    "    for (int i = 0; i < nkt; ++i) {\n"
    "        const int s = i % STAGES;\n"
    "        mbar_wait(FULL(s), (i / STAGES) & 1);\n"
    "        const u32 as = base + s * STAGE_BYTES + cw * (BM / 2) * 128, bs = base + s * STAGE_BYTES + A_BYTES;\n"
    "        wgmma_pin<MT * BN / 2>(&acc[0][0]);\n"
    "        wgmma_fence();\n"
    "#pragma unroll\n"
    "        for (int ks = 0; ks < 4; ++ks)\n"
    "#pragma unroll\n"
    "            for (int mt = 0; mt < MT; ++mt)\n"
    "                wgmma_ss<BN>(acc[mt], wgmma_desc_sw128(as + mt * 64 * 128 + ks * 32), wgmma_desc_sw128(bs + ks * 32), 1);\n"
    "        wgmma_commit();\n"
    "        wgmma_wait<1>();\n"
    "        wgmma_pin<MT * BN / 2>(&acc[0][0]);\n"
    "        if (i > 0 && lane == 0) mbar_arrive(EMPTY((i - 1) % STAGES));\n"
    "    }\n"
    "    wgmma_wait<0>();\n"
    "    wgmma_pin<MT * BN / 2>(&acc[0][0]);\n"
    "    // Every consumer's wgmmas have retired and every copy has landed (each was waited for), so the\n"
    "    // pipeline's memory is free for the epilogue tile. Named barrier 1: the consumers only.\n"
    "    asm volatile(\"bar.sync 1, 256;\\n\" ::: \"memory\");\n"
    "\n"
    "    // Where output pixel m's Co values start in y (and res).\n"
    "    auto out_at = [&](int m) -> long long {\n"
    "        if (phase < 0) return (long long)m * Co;\n"
    "        const int hw = Ho * Wo, b = m / hw, i = (m - b * hw) / Wo, j = m - b * hw - i * Wo;\n"
    "        return (((long long)b * 2 * Ho + 2 * i + (phase >> 1)) * 2 * Wo + 2 * j + (phase & 1)) * Co;\n"
    "    };\n"
    "    // The residual of output pixel m's row, offset like out_at (NULL without one).\n"
    "    auto res_row = [&](int m) -> const sd_half * {\n"
    "        return !res ? nullptr : res + (phase < 0 ? (long long)(m / res_px) * res_ld : out_at(m));\n"
    "    };\n"
    "    // Fragment layout: acc[mt][4j..4j+3] = rows g, g, g+8, g+8 of this warp's 16 in 64-row tile mt,\n"
    "    // columns 8j + 2t4 + {0, 1, 0, 1}.\n"
    "    const int g = lane >> 2, t4 = lane & 3, row0 = cw * (BM / 2) + (warp & 3) * 16 + g;\n"
    "    if (split > 1) {\n"
    "        // ---- Split-K: this block's partial sums into a [BM][BN+4] fp32 tile; once every block of\n"
    "        // the cluster has written its own, rows [rank*BM/split, (rank+1)*BM/split) are summed over\n"
    "        // the cluster's tiles (rank 0 first), biased and written; a second cluster barrier keeps\n"
    "        // every tile alive until the others have read it.\n"
    "        split_k_store_partials<MT, BN>(base, acc, row0, t4, PART_STR);\n"
    "        const int r0 = rank * BM / split, r1 = (rank + 1) * BM / split;\n"
    "        for (int i = tid - 128; i < (r1 - r0) * (BN / 8); i += 256) {\n"
    "            const int r = r0 + i / (BN / 8), c8 = (i % (BN / 8)) * 8, m = m0 + r, n = n0 + c8;\n"
    "            float v[8];\n"
    "#pragma unroll\n"
    "            for (int e = 0; e < 8; ++e) v[e] = 0.f;\n"
    "            for (int q = 0; q < split; ++q) {\n"
    "                const u32 a = base + (r * PART_STR + c8) * 4;\n"
    "                const float4 lo = cluster_ld4(a, (u32)q), hi = cluster_ld4(a + 16, (u32)q);\n"
    "                v[0] += lo.x; v[1] += lo.y; v[2] += lo.z; v[3] += lo.w;\n"
    "                v[4] += hi.x; v[5] += hi.y; v[6] += hi.z; v[7] += hi.w;\n"
    "            }\n"
    "            if (m < M && n < Co) {\n"
    "                u32 h[4];\n"
    "#pragma unroll\n"
    "                for (int e = 0; e < 4; ++e) {\n"
    "                    const float b0 = bias && n + 2 * e < Co ? half_to_float(bias[n + 2 * e]) : 0.f;\n"
    "                    const float b1 = bias && n + 2 * e + 1 < Co ? half_to_float(bias[n + 2 * e + 1]) : 0.f;\n"
    "                    h[e] = pack_h2(v[2 * e] + b0, v[2 * e + 1] + b1);\n"
    "                }\n"
    "                const sd_half *rr = res_row(m);\n"
    "                store_out8(y + out_at(m) + n, rr ? rr + n : nullptr, Co - n, h, vec);\n"
    "            }\n"
    "        }\n"
    "        cluster_arrive();\n"
    "        cluster_wait();\n"
    "        return;\n"
    "    }\n"
    "\n"
    "    // ---- Epilogue 1: acc + bias, rounded to fp16, into a [BM][BN+8] tile.\n"
    "#pragma unroll\n"
    "    for (int j = 0; j < BN / 8; ++j) {\n"
    "        const int col = j * 8 + 2 * t4, n = n0 + col;\n"
    "        const float b0 = bias && n < Co ? half_to_float(bias[n]) : 0.f;\n"
    "        const float b1 = bias && n + 1 < Co ? half_to_float(bias[n + 1]) : 0.f;\n"
    "#pragma unroll\n"
    "        for (int mt = 0; mt < MT; ++mt) {\n"
    "            const float *d = &acc[mt][4 * j];\n"
    "            const u32 a0 = base + ((row0 + mt * 64) * EPI_STR + col) * 2, a1 = a0 + 8 * EPI_STR * 2;\n"
    "            asm volatile(\"st.shared.b32 [%0], %1;\\n\" ::\"r\"(a0), \"r\"(pack_h2(d[0] + b0, d[1] + b1)) : \"memory\");\n"
    "            asm volatile(\"st.shared.b32 [%0], %1;\\n\" ::\"r\"(a1), \"r\"(pack_h2(d[2] + b0, d[3] + b1)) : \"memory\");\n"
    "        }\n"
    "    }\n"
    "    asm volatile(\"bar.sync 1, 256;\\n\" ::: \"memory\");\n"
    "\n"
    "    // ---- Epilogue 2: 8 outputs (16 bytes) per step, plus the residual, out to y.\n"
    "#pragma unroll 4\n"
    "    for (int i = tid - 128; i < BM * (BN / 8); i += 256) {\n"
    "        const int r = i / (BN / 8), c8 = (i - r * (BN / 8)) * 8, m = m0 + r, n = n0 + c8;\n"
    "        if (m >= M || n >= Co) continue;\n"
    "        u32 v[4];\n"
    "        asm volatile(\"ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\\n\"\n"
    "                     : \"=r\"(v[0]), \"=r\"(v[1]), \"=r\"(v[2]), \"=r\"(v[3])\n"
    "                     : \"r\"(base + (r * EPI_STR + c8) * 2) : \"memory\");\n"
    "        const sd_half *rr = res_row(m);\n"
    "        store_out8(y + out_at(m) + n, rr ? rr + n : nullptr, Co - n, v, vec);\n"
    "    }\n"
    "#undef FULL\n"
    "#undef EMPTY\n"
    "}\n";

/* The tiles {BM, BN} of sdiff_conv2d_fwd_tma's variants, -DCONV_TILE=0..4 (the kernel's table). */
static const int sdiff__cu_conv2d_tma_tiles[5][2] = {{128, 80}, {128, 128}, {128, 160}, {128, 256}, {256, 128}};
/* Launch configuration for sdiff_conv2d_fwd_tma compiled with -DCONV_TILE=tile, M = B*Ho*Wo, split-K
   over clusters of `split` blocks. */
SDIFF__PRIVATE void sdiff__cu_conv2d_tma_launch_dims(int tile, int split, long long M, int Co, unsigned grid[3],
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
SDIFF__PRIVATE int sdiff__cu_conv2d_tma_pick(long long M, int Co, long long KT, const int fit[9], const int box_ok[5],
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
SDIFF__PRIVATE int sdiff__cu_conv2d_tma_box(int Ho, int Wo, int bm, unsigned box[3]) {
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
SDIFF__PRIVATE int sdiff__cu_conv2d_tma_maps(sdiff__cu_tmap_encode_fn encode, void *maps[2], const void *x, const void *w,
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
/* END GENERATED: implicit-GEMM convolution (TMA, wgmma) */

/* BEGIN GENERATED: GEMM (TMA, wgmma) (tools/kernels/gen_kernels.py) */
/* The GEMM on Hopper (a TMA producer, mbarriers, wgmma consumers, persistent; sm_90a only).
   Kernel (compile with NVRTC, mma.cuh given as a header, --gpu-architecture=sm_90a only,
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
static const char sdiff__cu_gemm_tma_src[] =
    "// sdiff GEMM on Hopper (sm_90a): y[m, n] = alpha * sum_k a[m, k] w[n, k] (+ bias[n]) (+ res[m, n]), the\n"
    "// linear layers' y = x w^T with both operands K-major, fp16 in, fp32 accumulate, fp16 (or fp32) out;\n"
    "// optionally with GEGLU fused (y = h * gelu(g) of the layer's two halves: SD's feed-forward).\n"
    "// The library runs its Hopper GEMMs on it instead of cuBLASLt: cuBLASLt's own Hopper kernels\n"
    "// (nvjet_*) are flagged by compute-sanitizer racecheck whenever their shared-memory ring wraps\n"
    "// (tools/PERF.md, S12), and a library whose users run the sanitizer on their programs must not\n"
    "// report races it cannot explain; and an epilogue of our own takes the GEGLU, which saves the\n"
    "// feed-forward's widest tensor a round trip through memory (PERF.md, S13).\n"
    "// tools/kernels/bench_gemm.cu checks and times it against cuBLASLt.\n"
    "// The structure is conv_kernel_sm90.cu's without the image: a producer warpgroup whose first\n"
    "// thread issues 2-D TMA copies (a K tile of 64 of a, and of w, into the 128-byte swizzle that is\n"
    "// wgmma's K-major layout) and one or two consumer warpgroups of 128 rows that run the wgmmas,\n"
    "// with an mbarrier ring between them.\n"
    "//\n"
    "// Persistent: the host launches as many blocks as fit at once (two per SM for the 128-row tiles,\n"
    "// each with half the shared memory; one for the 256-row tiles); block b takes output tiles b,\n"
    "// b + grid, b + 2 grid, ... (tile t = (t / tiles_n, t % tiles_n): neighbouring blocks share the rows\n"
    "// of a, so a stays in L2), and its producer runs ahead into the next tile while the consumers write\n"
    "// the last one. Two blocks per SM hide an epilogue: while one writes its tile the other's wgmmas\n"
    "// keep the tensor cores busy (CUTLASS's \"ping-pong\", obtained from the block scheduler instead of\n"
    "// two consumer warpgroups sharing one ring, whose mbarrier parities could not tell a consumer two\n"
    "// phases ahead from one in step); the 256-row tiles read each w tile once for 256 rows instead.\n"
    "//\n"
    "// Split-K (split > 1; for grids too small to fill the GPU: SD's 8x8 and 16x16 levels, the time\n"
    "// projections): clusters of `split` blocks along x, one tile per cluster; block `rank` sums K tiles\n"
    "// [rank * KT / split, (rank + 1) * KT / split), the partial tiles meet in distributed shared memory\n"
    "// and block `rank` finishes rows [rank * BM / split, (rank + 1) * BM / split) adding the partials in\n"
    "// rank order (the same order every run). No workspace, no second kernel, as conv_kernel_sm90.cu.\n"
    "//\n"
    "// Epilogue (the rounding of the library's other routes and of diffusers, a linear layer then the\n"
    "// residual add): y = fp16(fp16(alpha * acc + bias) + res), through a [BM][BN+8] fp16 tile of its\n"
    "// own in shared memory (the ring already holds the next tile's operands), then 16-byte stores with\n"
    "// the residual loads of EPI_BATCH chunks per thread in flight together. GEGLU (sdiff_gemm_tma_geglu): a tile's\n"
    "// w rows are BN/2 rows of the layer's first half (h) and the same BN/2 of its second (g), loaded\n"
    "// as two TMA boxes, so the tile holds both halves of BN/2 outputs; the fp16 tile is made as\n"
    "// always and y = fp16(h * gelu(g)) of its two halves, rounded as the unfused route rounds. Straight from the\n"
    "// registers (4-byte stores, a residual load per pair) it was 1.3-2.5x slower: res may be y, so\n"
    "// every load had to wait for the store before it (PERF.md, S12). OUT_F32 (attention scores):\n"
    "// y = alpha * acc in fp32, straight from the registers.\n"
    "//\n"
    "// Defines: GEMM_TILE (0..6, BM x BN: 128 x 64, 128 x 128, 256 x 64, 256 x 128, 128 x 80, 256 x 80,\n"
    "// 64 x 80; mirrored by the host's sdiff__cu_gemm_tiles. BM 256: two consumer warpgroups and one\n"
    "// block per SM; else one (of 64 rows at BM 64) and two blocks per SM. The 80-wide tiles are\n"
    "// cuBLASLt's trick for SD's widths: 320, 640 and 1280 columns in 4, 8 and 16 of them make about\n"
    "// one wave of 128 tiles at each level, where 64 and 128 leave 40% of the SMs idle or need a second\n"
    "// wave, PERF.md S13), OUT_F32 (1: fp32 output, no bias or residual), GEMM_BPS (blocks per SM,\n"
    "// default as above), GEMM_STAGES (the ring's depth; default: as many as fit beside the epilogue\n"
    "// tile in the block's share of the SM's 227 KB, at most 12).\n"
    "\n"
    "#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)\n"
    "#error \"gemm_kernel_sm90.cu needs --gpu-architecture=sm_90a (wgmma, TMA)\"\n"
    "#endif\n"
    "#ifndef OUT_F32\n"
    "#define OUT_F32 0\n"
    "#endif\n"
    "#ifndef GEMM_TILE // the fp32-output build (attention scores) is the 256 x 128 tile's\n"
    "#define GEMM_TILE (OUT_F32 ? 3 : 1)\n"
    "#endif\n"
    "#if GEMM_TILE < 0 || GEMM_TILE > 6\n"
    "#error \"GEMM_TILE must be 0..6\"\n"
    "#endif\n"
    "#define BM (GEMM_TILE == 6 ? 64 : GEMM_TILE == 2 || GEMM_TILE == 3 || GEMM_TILE == 5 ? 256 : 128)\n"
    "#define BN (GEMM_TILE >= 4 ? 80 : GEMM_TILE & 1 ? 128 : 64)\n"
    "#define CWG (BM == 256 ? 2 : 1)                 // consumer warpgroups, 128 rows each (64 at BM 64)\n"
    "#define MT (BM == 64 ? 1 : 2)                   // 64-row wgmma tiles per consumer warpgroup\n"
    "#define NT (128 * (1 + CWG))                    // producer warpgroup + consumers\n"
    "#ifndef GEMM_BPS\n"
    "#define GEMM_BPS (CWG == 1 ? 2 : 1)\n"
    "#endif\n"
    "#define BPS GEMM_BPS                            // blocks per SM\n"
    "#define A_BYTES (BM * 128)                      // one K tile of a: BM rows of 64 fp16\n"
    "#define STAGE_BYTES ((BM + BN) * 128)\n"
    "#define BAR_BYTES 256\n"
    "#define EPI_STR (BN + 8)                        // halves per row of the epilogue tile\n"
    "#define EPI_BYTES (BM * EPI_STR * 2)\n"
    "#ifndef GEMM_STAGES\n"
    "#define GEMM_STAGES_FIT ((227 * 1024 / BPS - 1024 - BAR_BYTES - EPI_BYTES) / STAGE_BYTES)\n"
    "#define GEMM_STAGES (GEMM_STAGES_FIT > 12 ? 12 : GEMM_STAGES_FIT)\n"
    "#endif\n"
    "#define STAGES GEMM_STAGES\n"
    "#define EPI_BATCH 4                             // 16-byte output chunks per thread in flight\n"
    "#define PART_STR (BN + 4)                       // floats per row of a split-K partial tile\n"
    "#define PIPE_BYTES (STAGES * STAGE_BYTES)\n"
    "#define SMEM_BYTES (PIPE_BYTES + EPI_BYTES + BAR_BYTES + 1024)\n"
    "#define PRODUCER_REGS 40\n"
    "#define CONSUMER_REGS (CWG == 1 ? 216 : 232)\n"
    "static_assert(STAGES >= 2 && 16 * STAGES <= BAR_BYTES, \"2..16 stages\");\n"
    "static_assert(BM * PART_STR * 4 <= PIPE_BYTES + EPI_BYTES, \"the split-K partial tile reuses the ring's and the epilogue's memory\");\n"
    "static_assert(BPS * 128 * (PRODUCER_REGS + CWG * CONSUMER_REGS) <= 65536, \"the blocks of an SM must fit its registers\");\n"
    "\n"
    "#ifdef GEMM_EXPECT_SMEM // what the host's tables say (tests/test_cuda.c)\n"
    "static_assert(BM == GEMM_EXPECT_BM && BN == GEMM_EXPECT_BN && SMEM_BYTES == GEMM_EXPECT_SMEM,\n"
    "              \"sdiff__cu_gemm_tiles or sdiff__cu_gemm_smem disagrees with the kernel\");\n"
    "#endif\n"
    "\n"
    "// Tile configuration, readable by the host (cuModuleGetGlobal).\n"
    "extern \"C\" __constant__ int sdiff_gemm_tma_cfg[4] = {BM, BN, NT, SMEM_BYTES};\n"
    "\n"
    "#include \"mma.cuh\"\n"
    "\n"
    "// Elements n and n + 1 of row p as a packed pair (lo = n; a missing one, n + 1 == N, reads as 0):\n"
    "// one 4-byte load where p allows it. Only called with n < N.\n"
    "static __device__ __forceinline__ u32 load_pair(const sd_half *p, int n, int N) {\n"
    "    if (n + 1 < N && !((unsigned long long)(p + n) & 3)) return *(const u32 *)(p + n);\n"
    "    return (u32)p[n] | (n + 1 < N ? (u32)p[n + 1] << 16 : 0u);\n"
    "}\n"
    "// Outputs (m, n) and (m, n + 1) of y (the second only when n + 1 < N; only called with n < N):\n"
    "// fp16(fp16(alpha * v + bias) + res) with the bias and residual pairs already loaded (b, r: packed\n"
    "// fp16, r used when has_res), or alpha * v in fp32 with OUT_F32.\n"
    "static __device__ __forceinline__ void store_pair(void *yv, long long ldy, int m, int n, int N, float v0, float v1,\n"
    "                                                  float alpha, u32 b, u32 r, bool has_res) {\n"
    "    const bool two = n + 1 < N;\n"
    "#if OUT_F32\n"
    "    float *y = (float *)yv + m * ldy + n;\n"
    "    if (two && !((unsigned long long)y & 7)) {\n"
    "        float2 f;\n"
    "        f.x = alpha * v0;\n"
    "        f.y = alpha * v1;\n"
    "        *(float2 *)y = f;\n"
    "    } else {\n"
    "        y[0] = alpha * v0;\n"
    "        if (two) y[1] = alpha * v1;\n"
    "    }\n"
    "#else\n"
    "    u32 h = pack_h2(alpha * v0 + half_to_float((sd_half)(b & 0xffffu)), alpha * v1 + half_to_float((sd_half)(b >> 16)));\n"
    "    if (has_res)\n"
    "        h = pack_h2(half_to_float((sd_half)(h & 0xffffu)) + half_to_float((sd_half)(r & 0xffffu)),\n"
    "                    half_to_float((sd_half)(h >> 16)) + half_to_float((sd_half)(r >> 16)));\n"
    "    sd_half *y = (sd_half *)yv + m * ldy + n;\n"
    "    if (two && !((unsigned long long)y & 3)) {\n"
    "        *(u32 *)y = h;\n"
    "    } else {\n"
    "        y[0] = (sd_half)(h & 0xffffu);\n"
    "        if (two) y[1] = (sd_half)(h >> 16);\n"
    "    }\n"
    "#endif\n"
    "}\n"
    "\n"
    "// v[0..3] = the sum over the cluster's blocks 0..split-1 (in that order) of the four floats at shared\n"
    "// address a: every load in flight before the first add.\n"
    "static __device__ __forceinline__ void cluster_sum4(float *v, u32 a, int split) {\n"
    "    float4 p[8];\n"
    "#pragma unroll\n"
    "    for (int q = 0; q < 8; ++q)\n"
    "        if (q < split) p[q] = cluster_ld4(a, (u32)q);\n"
    "    v[0] = v[1] = v[2] = v[3] = 0.f;\n"
    "#pragma unroll\n"
    "    for (int q = 0; q < 8; ++q)\n"
    "        if (q < split) { v[0] += p[q].x; v[1] += p[q].y; v[2] += p[q].z; v[3] += p[q].w; }\n"
    "}\n"
    "\n"
    "#if !OUT_F32\n"
    "// Epilogue 2: the tile's COLS columns of fp16 outputs (in the epilogue tile at epi, rows EPI_STR\n"
    "// halves apart; with GEGLU h * gelu(g) of its columns c and BN/2 + c) plus the residual out to y as\n"
    "// 16-byte chunks (8 outputs), EPI_BATCH chunks per thread at a time with their residual loads\n"
    "// issued together (res may be y: each chunk is read and then written by the same thread). c_first:\n"
    "// this thread's index among the consumers.\n"
    "template <int COLS, bool GEGLU>\n"
    "static __device__ __forceinline__ void write_tile(int c_first, u32 epi, void *yv, long long ldy, const sd_half *res,\n"
    "                                                  long long ldr, int m0, int n0, int M, int N) {\n"
    "    const bool vec = !(ldy & 7) && !(N & 7) && !((unsigned long long)yv & 15) &&\n"
    "                     (!res || (!(ldr & 7) && !((unsigned long long)res & 15)));\n"
    "    constexpr int CPR = COLS / 8, CHUNKS = BM * CPR, STEP = 128 * CWG; // chunks per row, per tile\n"
    "#pragma unroll 1\n"
    "    for (int c0 = c_first; c0 < CHUNKS; c0 += STEP * EPI_BATCH) {\n"
    "        uint4 rv[EPI_BATCH];\n"
    "#pragma unroll\n"
    "        for (int e = 0; e < EPI_BATCH; ++e) {\n"
    "            const int c = c0 + e * STEP, r = c / CPR, m = m0 + r, n = n0 + (c - r * CPR) * 8;\n"
    "            rv[e].x = rv[e].y = rv[e].z = rv[e].w = 0u;\n"
    "            if (vec && res && c < CHUNKS && m < M && n < N) rv[e] = *(const uint4 *)(res + m * ldr + n);\n"
    "        }\n"
    "#pragma unroll\n"
    "        for (int e = 0; e < EPI_BATCH; ++e) {\n"
    "            const int c = c0 + e * STEP, r = c / CPR, m = m0 + r, c8 = (c - r * CPR) * 8, n = n0 + c8;\n"
    "            if (c >= CHUNKS || m >= M || n >= N) continue;\n"
    "            u32 v[4];\n"
    "            asm volatile(\"ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\\n\"\n"
    "                         : \"=r\"(v[0]), \"=r\"(v[1]), \"=r\"(v[2]), \"=r\"(v[3])\n"
    "                         : \"r\"(epi + (r * EPI_STR + c8) * 2) : \"memory\");\n"
    "            if (GEGLU) { // v = h, the same 8 columns of g BN/2 further: y = h * gelu(g)\n"
    "                u32 gv[4];\n"
    "                asm volatile(\"ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\\n\"\n"
    "                             : \"=r\"(gv[0]), \"=r\"(gv[1]), \"=r\"(gv[2]), \"=r\"(gv[3])\n"
    "                             : \"r\"(epi + (r * EPI_STR + BN / 2 + c8) * 2) : \"memory\");\n"
    "#pragma unroll\n"
    "                for (int q = 0; q < 4; ++q)\n"
    "                    v[q] = pack_h2(geglu_out(half_to_float((sd_half)(v[q] & 0xffffu)), half_to_float((sd_half)(gv[q] & 0xffffu))),\n"
    "                                   geglu_out(half_to_float((sd_half)(v[q] >> 16)), half_to_float((sd_half)(gv[q] >> 16))));\n"
    "            }\n"
    "            sd_half *yp = (sd_half *)yv + m * ldy + n;\n"
    "            if (!vec) {\n"
    "                store_out8(yp, res ? res + m * ldr + n : nullptr, N - n, v, 0);\n"
    "                continue;\n"
    "            }\n"
    "            if (res) add_h8(v, rv[e]);\n"
    "            uint4 ov;\n"
    "            ov.x = v[0]; ov.y = v[1]; ov.z = v[2]; ov.w = v[3];\n"
    "            *(uint4 *)yp = ov;\n"
    "        }\n"
    "    }\n"
    "}\n"
    "#endif\n"
    "\n"
    "// Launch: split == 1: grid (min(n_tiles, 2 * SMs), 1, 1); split > 1: grid (split, n_tiles, 1) in\n"
    "// clusters of (split, 1, 1). Block (NT, 1, 1), dynamic shared memory sdiff_gemm_tma_cfg[3] bytes.\n"
    "// ta: a as a 2-D map (K, M), box (64, BM); tb: w as (K, rows of w), box (64, BN / 2) (a tile's w\n"
    "// rows come in two halves); 128-byte swizzle, zeros outside (so K need not be a multiple of 64, nor\n"
    "// M, N of the tile). KT = ceil(K / 64). y: row m at y + m * ldy (fp16, or fp32 with OUT_F32); res\n"
    "// (optional; may be y) likewise with ldr. N: y's columns. sdiff_gemm_tma: w [N][K], bias (optional)\n"
    "// [N], tiles_n = ceil(N / BN); sdiff_gemm_tma_geglu: w [2N][K] (a linear layer of 2N outputs), y[m, n] = h * gelu(g)\n"
    "// of its outputs h = n and g = N + n, bias (optional) [2N], tiles_n = ceil(N / (BN / 2)) (a tile\n"
    "// computes BN / 2 of h and the same BN / 2 of g). n_tiles = ceil(M / BM) * tiles_n.\n"
    "// GEGLU is a template parameter, two kernels (sdiff_gemm_tma, sdiff_gemm_tma_geglu): as a run-time\n"
    "// flag its code made the plain kernel 10-15% slower (PERF.md, S13).\n"
    "template <bool GEGLU>\n"
    "static __device__ __forceinline__ void gemm_body(const sd_tmap &ta, const sd_tmap &tb, const sd_half *__restrict__ bias,\n"
    "                                                 const sd_half *res, void *yv, int M, int N, int KT, int tiles_n,\n"
    "                                                 int n_tiles, long long ldy, long long ldr, float alpha) {\n"
    "    constexpr bool geglu = GEGLU;\n"
    "    extern __shared__ __align__(1024) unsigned char smem[];\n"
    "    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;\n"
    "    const int split = (int)cluster_size(), rank = (int)cluster_rank();\n"
    "    // split == 1: tiles blockIdx.x, + gridDim.x, ...; split > 1: tile blockIdx.y, this rank's K tiles.\n"
    "    const int t_first = split > 1 ? (int)blockIdx.y : (int)blockIdx.x, t_step = split > 1 ? n_tiles : (int)gridDim.x;\n"
    "    const int kt0 = rank * KT / split, nkt = (rank + 1) * KT / split - kt0;\n"
    "    const u32 base = (smem_addr(smem) + 1023u) & ~1023u;\n"
    "    const u32 epi = base + PIPE_BYTES, bars = epi + EPI_BYTES;\n"
    "#define FULL(s) (bars + 16 * (s))\n"
    "#define EMPTY(s) (bars + 16 * (s) + 8)\n"
    "    if (tid == 0) {\n"
    "        for (int s = 0; s < STAGES; ++s) {\n"
    "            mbar_init(FULL(s), 1);\n"
    "            mbar_init(EMPTY(s), 4 * CWG); // one arrival per consumer warp\n"
    "        }\n"
    "        asm volatile(\"fence.mbarrier_init.release.cluster;\\n\" ::: \"memory\");\n"
    "        tmap_prefetch(&ta); // while the previous kernel drains (before pdl_begin)\n"
    "        tmap_prefetch(&tb);\n"
    "    }\n"
    "    pdl_begin();\n"
    "    __syncthreads();\n"
    "\n"
    "    if (wg == 0) {\n"
    "        // ---- Producer: the ring's iterations run on across tiles (it counts every K tile).\n"
    "        asm volatile(\"setmaxnreg.dec.sync.aligned.u32 %0;\\n\" ::\"n\"(PRODUCER_REGS));\n"
    "        if (tid == 0) {\n"
    "            int it = 0;\n"
    "            for (int t = t_first; t < n_tiles; t += t_step) {\n"
    "                // w rows of the tile's two halves: n0.. and n0 + BN/2.., or with geglu h's n0.. and g's N + n0..\n"
    "                const int m0 = (t / tiles_n) * BM, n0 = (t % tiles_n) * (geglu ? BN / 2 : BN);\n"
    "                const int w0 = n0, w1 = geglu ? N + n0 : n0 + BN / 2;\n"
    "                for (int i = 0; i < nkt; ++i, ++it) {\n"
    "                    const int s = it % STAGES;\n"
    "                    mbar_wait(EMPTY(s), ((it / STAGES) & 1) ^ 1);\n"
    "                    const u32 dst = base + s * STAGE_BYTES;\n"
    "                    mbar_expect_tx(FULL(s), STAGE_BYTES);\n"
    "                    tma_load2(dst, &ta, (kt0 + i) * 64, m0, FULL(s));\n"
    "                    tma_load2(dst + A_BYTES, &tb, (kt0 + i) * 64, w0, FULL(s));\n"
    "                    tma_load2(dst + A_BYTES + BN / 2 * 128, &tb, (kt0 + i) * 64, w1, FULL(s));\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "        if (split > 1) split_k_producer_sync(); // the partials' exchange below\n"
    "        return;\n"
    "    }\n"
    "\n"
    "    // ---- Consumers: warpgroup cw owns rows cw*128 .. +128 of the tile, all BN columns, as MT wgmma\n"
    "    // tiles of 64 rows (acc[mt]).\n"
    "    asm volatile(\"setmaxnreg.inc.sync.aligned.u32 %0;\\n\" ::\"n\"(CONSUMER_REGS));\n"
    "    const int cw = wg - 1;\n"
    "    float acc[MT][BN / 2];\n"
    "    // Fragment layout: acc[mt][4j..4j+3] = rows g, g, g+8, g+8 of this warp's 16 in 64-row tile mt,\n"
    "    // columns 8j + 2t4 + {0, 1, 0, 1}.\n"
    "    const int g = lane >> 2, t4 = lane & 3, row0 = cw * 128 + (warp & 3) * 16 + g;\n"
    "    int it = 0;\n"
    "    for (int t = t_first; t < n_tiles; t += t_step) {\n"
    "        const int m0 = (t / tiles_n) * BM, n0 = (t % tiles_n) * (geglu ? BN / 2 : BN); // y's first row and column\n"
    "        // The first K tile's first wgmma overwrites the accumulators (scale_d = 0); a stage is\n"
    "        // handed back once the wgmmas that read it have retired (wait<1> after the next tile's).\n"
    "        for (int i = 0; i < nkt; ++i, ++it) {\n"
    "            const int s = it % STAGES;\n"
    "            mbar_wait(FULL(s), (it / STAGES) & 1);\n"
    "            const u32 as = base + s * STAGE_BYTES + cw * 128 * 128, bs = base + s * STAGE_BYTES + A_BYTES;\n"
    "            wgmma_pin<MT * BN / 2>(&acc[0][0]);\n"
    "            wgmma_fence();\n"
    "#pragma unroll\n"
    "            for (int ks = 0; ks < 4; ++ks)\n"
    "#pragma unroll\n"
    "                for (int mt = 0; mt < MT; ++mt)\n"
    "                    wgmma_ss<BN>(acc[mt], wgmma_desc_sw128(as + mt * 64 * 128 + ks * 32), wgmma_desc_sw128(bs + ks * 32),\n"
    "                                 i > 0 || ks > 0);\n"
    "            wgmma_commit();\n"
    "            wgmma_wait<1>();\n"
    "            wgmma_pin<MT * BN / 2>(&acc[0][0]);\n"
    "            if (i > 0 && lane == 0) mbar_arrive(EMPTY((it - 1) % STAGES));\n"
    "        }\n"
    "        wgmma_wait<0>();\n"
    "        wgmma_pin<MT * BN / 2>(&acc[0][0]);\n"
    "        if (lane == 0) mbar_arrive(EMPTY((it - 1) % STAGES));\n"
    "\n"
    "        if (split > 1) {\n"
    "            // ---- Split-K: this block's partial sums into a [BM][BN+4] fp32 tile in the ring's and\n"
    "            // the epilogue tile's memory (free: every copy this block asked for has been waited for\n"
    "            // and consumed, and a block has only this tile);\n"
    "            // once every block of the cluster has written its own, rows [rank*BM/split,\n"
    "            // (rank+1)*BM/split) are summed over the cluster's tiles (rank 0 first) and written; a\n"
    "            // second cluster barrier keeps every tile alive until the others have read it.\n"
    "            asm volatile(\"bar.sync 1, %0;\\n\" ::\"n\"(128 * CWG) : \"memory\");\n"
    "            split_k_store_partials<MT, BN>(base, acc, row0, t4, PART_STR);\n"
    "            const int r0 = rank * BM / split, r1 = (rank + 1) * BM / split, c4n = (geglu ? BN / 2 : BN) / 4;\n"
    "            for (int i = tid - 128; i < (r1 - r0) * c4n; i += 128 * CWG) {\n"
    "                const int r = r0 + i / c4n, c4 = (i % c4n) * 4, m = m0 + r, n = n0 + c4;\n"
    "                // every block's partials in flight together, then summed in rank order (with geglu: h's, then g's)\n"
    "                float h[4], g[4] = {0.f, 0.f, 0.f, 0.f};\n"
    "                cluster_sum4(h, base + (r * PART_STR + c4) * 4, split);\n"
    "                if (geglu) cluster_sum4(g, base + (r * PART_STR + BN / 2 + c4) * 4, split);\n"
    "                if (m >= M) continue;\n"
    "                u32 b[2] = {0u, 0u}, rp[2] = {0u, 0u};\n"
    "#pragma unroll\n"
    "                for (int e = 0; e < 2; ++e)\n"
    "                    if (n + 2 * e < N) {\n"
    "                        if (res) rp[e] = load_pair(res + m * ldr, n + 2 * e, N);\n"
    "                        if (bias && !geglu) b[e] = load_pair(bias, n + 2 * e, N);\n"
    "                    }\n"
    "                float a = alpha;\n"
    "                if (geglu) { // h * gelu(g) first, then on as a plain output with no bias\n"
    "#pragma unroll\n"
    "                    for (int e = 0; e < 4; ++e)\n"
    "                        if (n + e < N)\n"
    "                            h[e] = geglu_out(alpha * h[e] + (bias ? half_to_float(bias[n + e]) : 0.f),\n"
    "                                             alpha * g[e] + (bias ? half_to_float(bias[N + n + e]) : 0.f));\n"
    "                    a = 1.f;\n"
    "                }\n"
    "#pragma unroll\n"
    "                for (int e = 0; e < 2; ++e)\n"
    "                    if (n + 2 * e < N) store_pair(yv, ldy, m, n + 2 * e, N, h[2 * e], h[2 * e + 1], a, b[e], rp[e], res);\n"
    "            }\n"
    "            cluster_arrive();\n"
    "            cluster_wait();\n"
    "            return;\n"
    "        }\n"
    "\n"
    "#if OUT_F32\n"
    "        // ---- Epilogue (fp32 scores): straight from the registers.\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < BN / 8; ++j) {\n"
    "            const int n = n0 + j * 8 + 2 * t4;\n"
    "            if (n >= N) continue;\n"
    "#pragma unroll\n"
    "            for (int mt = 0; mt < MT; ++mt)\n"
    "#pragma unroll\n"
    "                for (int h = 0; h < 2; ++h) {\n"
    "                    const int m = m0 + mt * 64 + row0 + 8 * h;\n"
    "                    const float *d = &acc[mt][4 * j + 2 * h];\n"
    "                    if (m < M) store_pair(yv, ldy, m, n, N, d[0], d[1], alpha, 0u, 0u, false);\n"
    "                }\n"
    "        }\n"
    "#else\n"
    "        // ---- Epilogue 1: alpha * acc + bias, rounded to fp16, into the [BM][BN+8] tile of its own\n"
    "        // (the ring is the next tile's by now). Column c < BN/2 is w row w0 + c, c >= BN/2 is w1 + c\n"
    "        // - BN/2 (the producer's two halves). The barrier first: every consumer has finished\n"
    "        // reading the previous tile out of it.\n"
    "        const int w0 = n0, w1 = geglu ? N + n0 : n0 + BN / 2;\n"
    "        asm volatile(\"bar.sync 1, %0;\\n\" ::\"n\"(128 * CWG) : \"memory\");\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < BN / 8; ++j) {\n"
    "            const int col = j * 8 + 2 * t4, cc = j < BN / 16 ? col : col - BN / 2, wr = (j < BN / 16 ? w0 : w1) + cc;\n"
    "            const bool ok0 = (geglu ? n0 + cc : wr) < N, ok1 = (geglu ? n0 + cc : wr) + 1 < N;\n"
    "            const float b0 = bias && ok0 ? half_to_float(bias[wr]) : 0.f, b1 = bias && ok1 ? half_to_float(bias[wr + 1]) : 0.f;\n"
    "#pragma unroll\n"
    "            for (int mt = 0; mt < MT; ++mt) {\n"
    "                const float *d = &acc[mt][4 * j];\n"
    "                const u32 a0 = epi + ((row0 + mt * 64) * EPI_STR + col) * 2, a1 = a0 + 8 * EPI_STR * 2;\n"
    "                asm volatile(\"st.shared.b32 [%0], %1;\\n\" ::\"r\"(a0), \"r\"(pack_h2(alpha * d[0] + b0, alpha * d[1] + b1)) : \"memory\");\n"
    "                asm volatile(\"st.shared.b32 [%0], %1;\\n\" ::\"r\"(a1), \"r\"(pack_h2(alpha * d[2] + b0, alpha * d[3] + b1)) : \"memory\");\n"
    "            }\n"
    "        }\n"
    "        asm volatile(\"bar.sync 1, %0;\\n\" ::\"n\"(128 * CWG) : \"memory\");\n"
    "        if (geglu) write_tile<BN / 2, true>(tid - 128, epi, yv, ldy, res, ldr, m0, n0, M, N);\n"
    "        else write_tile<BN, false>(tid - 128, epi, yv, ldy, res, ldr, m0, n0, M, N);\n"
    "#endif\n"
    "    }\n"
    "#undef FULL\n"
    "#undef EMPTY\n"
    "}\n"
    "\n"
    "#define GEMM_PARAMS                                                                                                     \\\n"
    "    const __grid_constant__ sd_tmap ta, const __grid_constant__ sd_tmap tb, const sd_half *__restrict__ bias,            \\\n"
    "        const sd_half *res, void *yv, int M, int N, int KT, int tiles_n, int n_tiles, long long ldy, long long ldr,     \\\n"
    "        float alpha\n"
    "extern \"C\" __global__ void __launch_bounds__(NT, BPS) sdiff_gemm_tma(GEMM_PARAMS) {\n"
    "    gemm_body<false>(ta, tb, bias, res, yv, M, N, KT, tiles_n, n_tiles, ldy, ldr, alpha);\n"
    "}\n"
    "#if !OUT_F32\n"
    "extern \"C\" __global__ void __launch_bounds__(NT, BPS) sdiff_gemm_tma_geglu(GEMM_PARAMS) {\n"
    "    gemm_body<true>(ta, tb, bias, res, yv, M, N, KT, tiles_n, n_tiles, ldy, ldr, alpha);\n"
    "}\n"
    "#endif\n";

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
SDIFF__PRIVATE void sdiff__cu_gemm_launch_dims(long long M, long long N, int geglu, int tile, int split, int n_sm,
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
SDIFF__PRIVATE int sdiff__cu_gemm_pick(long long M, long long N, long long K, int geglu, int n_sm, int max_split,
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
SDIFF__PRIVATE int sdiff__cu_gemm_maps(sdiff__cu_tmap_encode_fn encode, void *maps[2], const void *a, long long lda,
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
/* END GENERATED: GEMM (TMA, wgmma) */

/* >>cuda:nvrtc =============================================================
   NVRTC compilation, the on-disk cubin cache and the per-backend modules.
   ========================================================================= */
typedef struct sdiff__cuda_program {
    const char *name;               /* for messages and NVRTC's program name */
    const char *src;
    int n_variants;
    const char *variant_opts[SDIFF__CUDA_MAX_VARIANTS];   /* a -D per variant */
    bool sm90a_only;                /* wgmma: compiled and used only for sm_90a */
} sdiff__cuda_program;

/* Attention fallback variants: per-lane accumulators for head dims up to
   64, 128, 256 and 512. */
static const int sdiff__cuda_attn_dmax[SDIFF__CUDA_MAX_VARIANTS] = {64, 128, 256, 512};
#define SDIFF__CUDA_TMA_VARIANTS 3 /* the TMA attention kernel's head dims (sdiff__cuda_tma_dims) */
static const sdiff__cuda_program sdiff__cuda_programs[SDIFF__CP_COUNT] = {
    {"sdiff_convert", sdiff__cuda_src_convert, 1, {""}, false},
    {"sdiff_elementwise", sdiff__cuda_src_elementwise, 1, {""}, false},
    {"sdiff_norm", sdiff__cuda_src_norm, 1, {""}, false},
    {"sdiff_im2col", sdiff__cuda_src_im2col, 1, {""}, false},
    {"sdiff_attention_fallback", sdiff__cuda_src_attention_fallback, 4,
     {"-DSDIFF_ATTN_DPL=2", "-DSDIFF_ATTN_DPL=4", "-DSDIFF_ATTN_DPL=8", "-DSDIFF_ATTN_DPL=16"}, false},
    {"sdiff_attention", sdiff__cu_attention_src, 4, {"-DHEAD_DIM=40", "-DHEAD_DIM=64", "-DHEAD_DIM=80", "-DHEAD_DIM=160"}, false},
    /* variant i < SDIFF__CUDA_TMA_VARIANTS: head dim sdiff__cuda_tma_dims[i]; i + SDIFF__CUDA_TMA_VARIANTS:
       the same with the split tails compiled in (used only when a launch splits) */
    {"sdiff_attention_sm90", sdiff__cu_attention_sm90_src, 2 * SDIFF__CUDA_TMA_VARIANTS,
     {"-DHEAD_DIM=40", "-DHEAD_DIM=64", "-DHEAD_DIM=80", "-DATT_SPLIT_HEAD_DIM=40", "-DATT_SPLIT_HEAD_DIM=64",
      "-DATT_SPLIT_HEAD_DIM=80"}, true},
    {"sdiff_conv2d", sdiff__cu_conv2d_src, 3, {"-DCONV_TILE=0", "-DCONV_TILE=1", "-DCONV_TILE=2"}, false},
    {"sdiff_conv2d_sm90", sdiff__cu_conv2d_src, 3, {"-DCONV_TILE=3", "-DCONV_TILE=4", "-DCONV_TILE=5"}, true},
    /* variant t is -DCONV_TILE=t, sdiff__cu_conv2d_tma_tiles[t] (tests/test_cuda.c checks it) */
    {"sdiff_conv2d_tma", sdiff__cu_conv2d_tma_src, 5,
     {"-DCONV_TILE=0", "-DCONV_TILE=1", "-DCONV_TILE=2", "-DCONV_TILE=3", "-DCONV_TILE=4"}, true},
    /* variant t < 7 is -DGEMM_TILE=t, sdiff__cu_gemm_tiles[t]; variant 7 the fp32-output one (tile 3) */
    {"sdiff_gemm_tma", sdiff__cu_gemm_tma_src, 8,
     {"-DGEMM_TILE=0", "-DGEMM_TILE=1", "-DGEMM_TILE=2", "-DGEMM_TILE=3", "-DGEMM_TILE=4", "-DGEMM_TILE=5",
      "-DGEMM_TILE=6", "-DOUT_F32=1"}, true},
};
/* The head dims the tensor-core kernel is built for (SD 1.x: 40, 80, 160;
   SD 2.x and CLIP: 64), in the order of its variants above; and those of the
   TMA one (sm_90a), likewise. */
static const int sdiff__cuda_flash_dims[SDIFF__CUDA_MAX_VARIANTS] = {40, 64, 80, 160};
static const int sdiff__cuda_tma_dims[SDIFF__CUDA_TMA_VARIANTS] = {40, 64, 80};
#define SDIFF__CUDA_CACHE_FORMAT 1

/* Two independent 64-bit FNV-1a style hashes (different bases and a final
   mix) make the 128-bit cache key. */
typedef struct sdiff__cuda_hash { uint64_t a, b; } sdiff__cuda_hash;
SDIFF__PRIVATE void sdiff__cuda_hash_add(sdiff__cuda_hash *h, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < n; i++) {
        h->a = (h->a ^ p[i]) * 0x100000001b3ull;
        h->b = (h->b ^ p[i]) * 0x9E3779B97F4A7C15ull;
        h->b ^= h->b >> 29;
    }
    /* a separator, so ("ab","c") and ("a","bc") differ */
    h->a = (h->a ^ 0xff) * 0x100000001b3ull;
    h->b = (h->b ^ 0xff) * 0x9E3779B97F4A7C15ull;
}
SDIFF__PRIVATE uint64_t sdiff__cuda_mix(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

/* The compiler options of (program, variant) for arch: argv-style. */
typedef struct sdiff__cuda_opts { const char *argv[8]; int n; char arch_opt[48]; } sdiff__cuda_opts;
SDIFF__PRIVATE void sdiff__cuda_make_opts(sdiff__cuda_opts *o, const char *arch, int prog, int variant) {
    o->n = 0;
    snprintf(o->arch_opt, sizeof o->arch_opt, "--gpu-architecture=%s", arch);
    o->argv[o->n++] = o->arch_opt;
    o->argv[o->n++] = "--std=c++17";
    o->argv[o->n++] = "-default-device";
    const char *v = sdiff__cuda_programs[prog].variant_opts[variant];
    if (v && v[0]) o->argv[o->n++] = v;
}

/* The cache directory (created), or false when the cache is off/unusable. */
SDIFF__PRIVATE bool sdiff__cuda_cache_dir(char *dir, size_t size) {
    const char *env = getenv("SDIFF_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (env && env[0]) {
        if (!strcmp(env, "off")) return false;
        n = snprintf(dir, size, "%s", env);
    } else if (xdg && xdg[0]) n = snprintf(dir, size, "%s/sdiff", xdg);
    else if (home && home[0]) n = snprintf(dir, size, "%s/.cache/sdiff", home);
    else return false;
    if (n <= 0 || (size_t)n >= size) return false;
    for (char *p = dir + 1;; p++) { /* mkdir -p */
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) return false;
            *p = c;
            if (!c) break;
        }
    }
    return true;
}

/* Cache file: magic, the key, the payload size, the payload. The key inside
   guards against a hash-named file that some other writer truncated. */
#define SDIFF__CUDA_CACHE_MAGIC "sdiffcu1"
SDIFF__PRIVATE char *sdiff__cuda_cache_read(const char *path, sdiff__cuda_hash key, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char magic[8];
    uint64_t k[2], n = 0;
    char *data = NULL;
    if (fread(magic, 1, 8, f) == 8 && !memcmp(magic, SDIFF__CUDA_CACHE_MAGIC, 8) && fread(k, 8, 2, f) == 2 &&
        k[0] == key.a && k[1] == key.b && fread(&n, 8, 1, f) == 1 && n > 0 && n < ((uint64_t)1 << 31)) {
        data = (char *)sdiff__malloc((size_t)n + 1);
        if (data && fread(data, 1, (size_t)n, f) != (size_t)n) { sdiff__free(data); data = NULL; }
        if (data) { data[n] = 0; *size = (size_t)n; }
    }
    fclose(f);
    return data;
}
/* Written to a unique temporary name, then renamed over the final one:
   rename is atomic, so a racing process reads the old file or the new one,
   never a half-written one. Failures only cost the cache. */
SDIFF__PRIVATE void sdiff__cuda_cache_write(const char *path, sdiff__cuda_hash key, const char *data, size_t n) {
    static int counter;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%d", path, (long)getpid(), __sync_fetch_and_add(&counter, 1));
    FILE *f = fopen(tmp, "wb");
    if (!f) return;
    uint64_t k[2] = {key.a, key.b}, nn = n;
    bool ok = fwrite(SDIFF__CUDA_CACHE_MAGIC, 1, 8, f) == 8 && fwrite(k, 8, 2, f) == 2 && fwrite(&nn, 8, 1, f) == 1 &&
              fwrite(data, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) remove(tmp);
}

/* Sends a long text (NVRTC's log) to the log callback whole, or to stderr:
   sdiff__log's buffer would cut it at 1 KB. */
SDIFF__PRIVATE void sdiff__cuda_log_long(const sdiff__logger *lg, sdiff_log_level level, const char *text) {
    if (lg && level > lg->level) return;
    if (lg && lg->fn) lg->fn(level, "cuda", text, lg->user);
    else fprintf(stderr, "sdiff [cuda] %s\n", text);
}

/* Compiles (program, variant) for arch: the code (cubin, or NUL-terminated
   PTX for a compute_XY arch) in *out (sdiff__malloc'd). Uses and fills the
   disk cache. On failure: SDIFF_ERR_BACKEND with the program's name and
   NVRTC's log in sdiff_last_error, the whole log also to `lg`. */
SDIFF__PRIVATE sdiff_status sdiff__cuda_compile(const char *arch, int prog, int variant, bool use_cache,
                                               const sdiff__logger *lg, char **out, size_t *out_size) {
    const sdiff__cuda_program *P = &sdiff__cuda_programs[prog];
    sdiff__cuda_libs *L = &sdiff__g_cu;
    const bool ptx = !strncmp(arch, "compute_", 8);
    sdiff__cuda_opts o;
    sdiff__cuda_make_opts(&o, arch, prog, variant);
    *out = NULL;
    /* the key: format version, arch, NVRTC version, options, sources */
    sdiff__cuda_hash key = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
    char ver[64];
    snprintf(ver, sizeof ver, "fmt%d nvrtc%d.%d", SDIFF__CUDA_CACHE_FORMAT, L->nvrtc_major, L->nvrtc_minor);
    sdiff__cuda_hash_add(&key, ver, strlen(ver));
    sdiff__cuda_hash_add(&key, arch, strlen(arch));
    for (int i = 0; i < o.n; i++) sdiff__cuda_hash_add(&key, o.argv[i], strlen(o.argv[i]));
    sdiff__cuda_hash_add(&key, sdiff__cuda_src_prelude, strlen(sdiff__cuda_src_prelude));
    sdiff__cuda_hash_add(&key, sdiff__cu_mma_src, strlen(sdiff__cu_mma_src));
    sdiff__cuda_hash_add(&key, P->src, strlen(P->src));
    key.a = sdiff__cuda_mix(key.a);
    key.b = sdiff__cuda_mix(key.b ^ key.a);
    char dir[900], path[1024];
    bool cached = use_cache && sdiff__cuda_cache_dir(dir, sizeof dir);
    if (cached) {
        snprintf(path, sizeof path, "%s/%s-%016llx%016llx.%s", dir, P->name, (unsigned long long)key.a,
                 (unsigned long long)key.b, ptx ? "ptx" : "cubin");
        if ((*out = sdiff__cuda_cache_read(path, key, out_size)) != NULL) return SDIFF_OK;
    }
    /* the prelude in front of the kernel source; the tensor-core helpers as the header "mma.cuh" */
    size_t n1 = strlen(sdiff__cuda_src_prelude), n2 = strlen(P->src);
    char *src = (char *)sdiff__malloc(n1 + n2 + 2);
    if (!src) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory compiling %s", P->name);
    memcpy(src, sdiff__cuda_src_prelude, n1);
    src[n1] = '\n';
    memcpy(src + n1 + 1, P->src, n2 + 1);
    nvrtcProgram pr = NULL;
    const char *hdr_src[1] = {sdiff__cu_mma_src}, *hdr_name[1] = {"mma.cuh"};
    nvrtcResult r = L->nvrtcCreateProgram(&pr, src, P->name, 1, hdr_src, hdr_name);
    sdiff__free(src);
    if (r != 0) return sdiff__err(SDIFF_ERR_BACKEND, "cuda: nvrtcCreateProgram(%s) failed: %s", P->name, sdiff__nvrtc_errstr(r));
    r = L->nvrtcCompileProgram(pr, o.n, o.argv);
    if (r != 0) {
        size_t ln = 0;
        char *log = NULL;
        if (L->nvrtcGetProgramLogSize(pr, &ln) == 0 && ln > 0 && (log = (char *)sdiff__malloc(ln + 1)) != NULL) {
            if (L->nvrtcGetProgramLog(pr, log) != 0) log[0] = 0;
            log[ln] = 0;
        }
        char head[256];
        snprintf(head, sizeof head, "NVRTC could not compile kernel %s (%s, %s): %s", P->name, arch,
                 P->variant_opts[variant][0] ? P->variant_opts[variant] : "no -D", sdiff__nvrtc_errstr(r));
        size_t hl = strlen(head), ll = log ? strlen(log) : 0;
        char *full = (char *)sdiff__malloc(hl + ll + 4);
        if (full) {
            snprintf(full, hl + ll + 4, "%s\n%s", head, log ? log : "");
            sdiff__cuda_log_long(lg, SDIFF_LOG_ERROR, full);
        }
        sdiff__err(SDIFF_ERR_BACKEND, "%s\n%s", head, log ? log : "");
        sdiff__free(full);
        sdiff__free(log);
        L->nvrtcDestroyProgram(&pr);
        return SDIFF_ERR_BACKEND;
    }
    size_t n = 0;
    r = ptx ? L->nvrtcGetPTXSize(pr, &n) : L->nvrtcGetCUBINSize(pr, &n);
    char *code = r == 0 && n > 0 ? (char *)sdiff__malloc(n + 1) : NULL;
    if (code) r = ptx ? L->nvrtcGetPTX(pr, code) : L->nvrtcGetCUBIN(pr, code);
    L->nvrtcDestroyProgram(&pr);
    if (!code || r != 0) {
        sdiff__free(code);
        return sdiff__err(SDIFF_ERR_BACKEND, "cuda: NVRTC produced no code for %s (%s): %s", P->name, arch,
                          r ? sdiff__nvrtc_errstr(r) : "empty output");
    }
    code[n] = 0;
    if (cached) sdiff__cuda_cache_write(path, key, code, n);
    *out = code;
    *out_size = n;
    return SDIFF_OK;
}

/* Compiles every kernel source and variant for arch ("sm_80", "sm_90a",
   "compute_90", ...) without a GPU and without the disk cache: CI's check
   that the sources build. Loads only NVRTC. */
SDIFF__INTERNAL sdiff_status sdiff__cuda_compile_all(const char *arch) {
    if (!sdiff__cuda_load_nvrtc()) return sdiff__err(SDIFF_ERR_BACKEND, "cuda: %s", sdiff__g_cu.nvrtc_why);
    for (int p = 0; p < SDIFF__CP_COUNT; p++)
        for (int v = 0; v < sdiff__cuda_programs[p].n_variants; v++) {
            if (sdiff__cuda_programs[p].sm90a_only && strcmp(arch, "sm_90a")) continue;
            char *code = NULL;
            size_t n = 0;
            SDIFF__TRY(sdiff__cuda_compile(arch, p, v, false, NULL, &code, &n));
            sdiff__free(code);
        }
    return SDIFF_OK;
}

/* The function `name` of (program, variant), compiling and loading the
   module on first use. NULL (backend failed) on error. */
SDIFF__PRIVATE CUfunction sdiff__cuda_fn(sdiff__cuda *cb, int prog, int variant, const char *name) {
    for (int i = 0; i < cb->n_fns; i++)
        if (cb->fns[i].prog == prog && cb->fns[i].variant == variant && !strcmp(cb->fns[i].name, name))
            return cb->fns[i].fn;
    sdiff__backend *be = &cb->be;
    if (!cb->modules[prog][variant]) {
        char *code = NULL;
        size_t n = 0;
        if (sdiff__cuda_compile(cb->arch, prog, variant, true, be->log, &code, &n) != SDIFF_OK) {
            char msg[sizeof sdiff__g_error];
            memcpy(msg, sdiff__g_error, sizeof msg);
            sdiff__be_fail(be, SDIFF_ERR_BACKEND, "%s", msg);
            return NULL;
        }
        CUresult r = sdiff__g_cu.cuModuleLoadData(&cb->modules[prog][variant], code);
        if (r != 0) {
            /* a stale or damaged cache entry: compile afresh once */
            sdiff__free(code);
            code = NULL;
            if (sdiff__cuda_compile(cb->arch, prog, variant, false, be->log, &code, &n) != SDIFF_OK) {
                char msg[sizeof sdiff__g_error];
                memcpy(msg, sdiff__g_error, sizeof msg);
                sdiff__be_fail(be, SDIFF_ERR_BACKEND, "%s", msg);
                return NULL;
            }
            bool ok = SDIFF__CU(be, cuModuleLoadData(&cb->modules[prog][variant], code));
            if (!ok) { sdiff__free(code); cb->modules[prog][variant] = NULL; return NULL; }
        }
        sdiff__free(code);
    }
    CUfunction f = NULL;
    if (!SDIFF__CU(be, cuModuleGetFunction(&f, cb->modules[prog][variant], name))) return NULL;
    if (cb->n_fns < SDIFF__CUDA_MAX_FNS) {
        sdiff__cuda_fn_entry e = {prog, variant, name, f, 0};
        cb->fns[cb->n_fns++] = e;
    }
    return f;
}

/* Grid for a grid-stride loop over n items, 256 threads a block. */
SDIFF__PRIVATE unsigned sdiff__cuda_grid(const sdiff__cuda *cb, int64_t n) {
    int64_t blocks = (n + 255) / 256, cap = (int64_t)cb->n_sm * 16;
    if (blocks < 1) blocks = 1;
    return (unsigned)(blocks < cap ? blocks : cap);
}
/* name's function, its dynamic shared memory limit raised to smem when that is above the default
   48 KB (once per function while it is in the cache of loaded functions); NULL on failure. */
SDIFF__PRIVATE CUfunction sdiff__cuda_fn_smem(sdiff__cuda *cb, int prog, int variant, const char *name, unsigned smem) {
    CUfunction f = sdiff__cuda_fn(cb, prog, variant, name);
    if (!f) return NULL;
    if (smem > 48u * 1024u) {
        sdiff__cuda_fn_entry *e = NULL;
        for (int i = 0; i < cb->n_fns && !e; i++)
            if (cb->fns[i].fn == f) e = &cb->fns[i];
        if (!e || e->smem < smem) {
            if (!SDIFF__CU(&cb->be, cuFuncSetAttribute(f, SDIFF__CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)smem)))
                return NULL;
            if (e) e->smem = smem;
        }
    }
    return f;
}
/* A launch config with the attributes sdiff uses: programmatic dependent launch (when the backend
   has it: every kernel starts with pdl_begin(), mma.cuh) and clusters of `cluster` blocks along x
   (0: none). attrs must have room for two. */
SDIFF__PRIVATE sdiff__cu_launch_config sdiff__cuda_launch_config(const sdiff__cuda *cb, const unsigned grid[3],
                                                                 const unsigned block[3], unsigned smem, unsigned cluster,
                                                                 sdiff__cu_launch_attr attrs[2]) {
    sdiff__cu_launch_config cfg = {grid[0], grid[1], grid[2], block[0], block[1], block[2], smem, cb->stream, attrs, 0};
    memset(attrs, 0, 2 * sizeof *attrs);
    if (cb->pdl) {
        attrs[cfg.n_attrs].id = SDIFF__CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
        attrs[cfg.n_attrs++].value.i = 1;
    }
    if (cluster) {
        const unsigned dims[3] = {cluster, 1, 1};
        attrs[cfg.n_attrs].id = SDIFF__CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
        memcpy(attrs[cfg.n_attrs++].value.bytes, dims, sizeof dims);
    }
    return cfg;
}
/* Launches `name` of (prog, variant) on the backend's stream with `smem` bytes of dynamic shared
   memory, in clusters of `cluster` blocks along x (0: no clusters; grid[0] a multiple of it). */
SDIFF__PRIVATE void sdiff__cuda_launch_cluster(sdiff__cuda *cb, int prog, int variant, const char *name,
                                               const unsigned grid[3], const unsigned block[3], unsigned smem,
                                               unsigned cluster, void **args) {
    if (cb->be.status != SDIFF_OK) return;
    CUfunction f = sdiff__cuda_fn_smem(cb, prog, variant, name, smem);
    if (!f) return;
    CUresult e;
    if (cb->pdl || cluster) {
        sdiff__cu_launch_attr attrs[2];
        const sdiff__cu_launch_config cfg = sdiff__cuda_launch_config(cb, grid, block, smem, cluster, attrs);
        e = sdiff__g_cu.cuLaunchKernelEx(&cfg, f, args, NULL);
    } else {
        e = sdiff__g_cu.cuLaunchKernel(f, grid[0], grid[1], grid[2], block[0], block[1], block[2], smem, cb->stream, args,
                                       NULL);
    }
    if (e) { /* name the kernel: a launch fails for its own configuration, or (with CUDA_LAUNCH_BLOCKING=1) its own fault */
        char what[160];
        snprintf(what, sizeof what, "launch of %s (grid %ux%ux%u, block %u, %u bytes of shared memory, clusters of %u)",
                 name, grid[0], grid[1], grid[2], block[0] * block[1] * block[2], smem, cluster);
        sdiff__cuda_check(&cb->be, e, NULL, what, __FILE__, __LINE__);
    }
}
SDIFF__PRIVATE void sdiff__cuda_launch_ex(sdiff__cuda *cb, int prog, int variant, const char *name, const unsigned grid[3],
                                          const unsigned block[3], unsigned smem, void **args) {
    sdiff__cuda_launch_cluster(cb, prog, variant, name, grid, block, smem, 0, args);
}
/* How many clusters of cs blocks of `name` (threads per block, smem bytes) the GPU runs at once:
   asked of the driver once per size and remembered in cache[cs] (cache[0..8], zeroed at start).
   A cluster must fit in one GPC, so this is less than the SMs / cs: an H100 holds 15 clusters of
   8 one-block-per-SM blocks, not 16. If the driver cannot say: SMs / cs - 1. */
SDIFF__PRIVATE int sdiff__cuda_clusters_fit(sdiff__cuda *cb, int prog, int variant, const char *name, unsigned threads,
                                            unsigned smem, int cs, int cache[9]) {
    if (cache[cs]) return cache[cs];
    int n = 0;
    CUfunction f = sdiff__g_cu.cuOccupancyMaxActiveClusters ? sdiff__cuda_fn_smem(cb, prog, variant, name, smem) : NULL;
    if (f) {
        const unsigned grid[3] = {(unsigned)cs, 1, 1}, blk[3] = {threads, 1, 1};
        sdiff__cu_launch_attr attrs[2];
        const sdiff__cu_launch_config cfg = sdiff__cuda_launch_config(cb, grid, blk, smem, cs > 1 ? (unsigned)cs : 0, attrs);
        if (sdiff__g_cu.cuOccupancyMaxActiveClusters(&n, f, &cfg) != SDIFF__CUDA_SUCCESS) n = 0;
    }
    if (n < 1) n = SDIFF__MAX(1, cb->n_sm / cs - 1);
    sdiff__log(cb->be.log, SDIFF_LOG_DEBUG, "cuda", "%s: %d clusters of %d blocks fit at once", name, n, cs);
    return cache[cs] = n;
}
/* The common case: a (gx, gy) grid of 1-D blocks, no dynamic shared memory. */
SDIFF__PRIVATE void sdiff__cuda_launch(sdiff__cuda *cb, int prog, int variant, const char *name, unsigned gx,
                                       unsigned gy, unsigned block, void **args) {
    const unsigned grid[3] = {gx, gy, 1}, blk[3] = {block, 1, 1};
    sdiff__cuda_launch_ex(cb, prog, variant, name, grid, blk, 0, args);
}
#define SDIFF__DPTR(p) ((CUdeviceptr)(uintptr_t)(p))
/* 16-byte aligned (for the kernels' vector paths). */
SDIFF__PRIVATE bool sdiff__cuda_al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* Makes the context current on the calling thread (ops may come from any
   thread, one at a time) and says whether the backend may go on. */
SDIFF__PRIVATE bool sdiff__cuda_enter(sdiff__backend *be) {
    if (be->status != SDIFF_OK) return false;
    return SDIFF__CU(be, cuCtxSetCurrent(SDIFF__CUDA(be)->ctx));
}
/* Ops that must not run inside a capture (they copy from the host). */
SDIFF__PRIVATE bool sdiff__cuda_not_capturing(sdiff__backend *be, const char *op) {
    if (!SDIFF__CUDA(be)->capturing) return true;
    sdiff__be_fail(be, SDIFF_ERR_BACKEND, "%s: called during CUDA graph capture (it copies from the host); "
                   "do it before graph_begin", op);
    return false;
}

/* >>cuda:memory ============================================================
   alloc/free, upload/download. upload and download are synchronous: the
   stream is drained before a host copy (so an earlier kernel is done with the
   staging buffer, and the data the host reads is complete), copies use the
   plain (legacy-stream) cuMemcpy calls, and the blocking stream orders every
   later kernel after them. Pageable host memory is read in place (the mmap of
   a checkpoint): no extra host copy. The arenas grow in place in reserved
   address space (range_reserve / range_grow / range_free, through the
   driver's virtual memory management): their memory is their peak.
   ========================================================================= */
/* Every device allocation of the backend goes through these two, which keep the bytes in use
   and their peak (weights, arena, scratch, workspace: what tools/bench reports as sdiff's peak
   GPU memory, beside torch's max_memory_allocated). */
SDIFF__PRIVATE CUresult sdiff__cuda_mem_alloc(sdiff__cuda *cb, CUdeviceptr *p, size_t bytes) {
    CUresult r = sdiff__g_cu.cuMemAlloc(p, bytes);
    if (r == SDIFF__CUDA_SUCCESS) {
        cb->mem_used += bytes;
        if (cb->mem_used > cb->mem_peak) cb->mem_peak = cb->mem_used;
    }
    return r;
}
SDIFF__PRIVATE void sdiff__cuda_mem_free(sdiff__cuda *cb, CUdeviceptr p) {
    if (!p) return;
    CUdeviceptr base = 0;
    size_t size = 0;
    if (sdiff__g_cu.cuMemGetAddressRange(&base, &size, p) == SDIFF__CUDA_SUCCESS && base == p)
        cb->mem_used -= SDIFF__MIN(size, cb->mem_used);
    sdiff__g_cu.cuMemFree(p);
}

/* The arena's growable range: address space for the whole device reserved once, physical memory
   created and mapped behind it piece by piece as the arena grows (in the allocation granularity,
   2 MiB on current GPUs), and kept until range_free. The pieces' handles are kept to unmap and
   release them. */
typedef struct sdiff__cuda_range {
    struct sdiff__cuda_range *next;
    CUdeviceptr base;
    size_t capacity, mapped, granularity;
    CUmemGenericAllocationHandle *pieces;
    size_t *piece_size;
    int n_pieces, cap_pieces;
} sdiff__cuda_range;

SDIFF__PRIVATE sdiff__cu_mem_prop sdiff__cuda_mem_prop(const sdiff__cuda *cb) {
    sdiff__cu_mem_prop prop;
    memset(&prop, 0, sizeof prop);
    prop.type = SDIFF__CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = SDIFF__CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = (int)cb->dev;
    return prop;
}
SDIFF__PRIVATE void *sdiff__cuda_range_reserve(sdiff__backend *be, size_t *capacity) {
    if (!sdiff__cuda_enter(be)) return NULL;
    sdiff__cuda *cb = SDIFF__CUDA(be);
    const sdiff__cu_mem_prop prop = sdiff__cuda_mem_prop(cb);
    size_t gran = 0, total = 0;
    sdiff__cuda_range *r = (sdiff__cuda_range *)sdiff__calloc(1, sizeof *r);
    /* no range (the arena then uses blocks) when the driver cannot, or SDIFF_CUDA_VMM=0: not an error */
    if (!r || !cb->vmm ||
        sdiff__g_cu.cuMemGetAllocationGranularity(&gran, &prop, SDIFF__CU_MEM_ALLOC_GRANULARITY_MINIMUM) ||
        !gran || sdiff__g_cu.cuDeviceTotalMem(&total, cb->dev)) {
        sdiff__free(r);
        return NULL;
    }
    r->granularity = gran;
    r->capacity = (total + gran - 1) / gran * gran;
    if (sdiff__g_cu.cuMemAddressReserve(&r->base, r->capacity, gran, 0, 0)) {
        sdiff__free(r);
        return NULL;
    }
    r->next = cb->ranges;
    cb->ranges = r;
    *capacity = r->capacity;
    return (void *)(uintptr_t)r->base;
}
SDIFF__PRIVATE sdiff__cuda_range *sdiff__cuda_range_find(sdiff__cuda *cb, void *base) {
    sdiff__cuda_range *r = cb->ranges;
    while (r && r->base != SDIFF__DPTR(base)) r = r->next;
    return r;
}
SDIFF__PRIVATE bool sdiff__cuda_range_grow(sdiff__backend *be, void *base, size_t *size) {
    if (!sdiff__cuda_enter(be)) return false;
    sdiff__cuda *cb = SDIFF__CUDA(be);
    sdiff__cuda_range *r = sdiff__cuda_range_find(cb, base);
    if (!r) {
        sdiff__be_fail(be, SDIFF_ERR_BACKEND, "cuda: range_grow of an unknown range");
        return false;
    }
    const size_t want = (*size + r->granularity - 1) / r->granularity * r->granularity;
    if (want > r->mapped) {
        if (want > r->capacity) return false;
        if (r->n_pieces == r->cap_pieces) {
            int cap = r->cap_pieces ? 2 * r->cap_pieces : 64;
            CUmemGenericAllocationHandle *h = (CUmemGenericAllocationHandle *)sdiff__realloc(r->pieces, (size_t)cap * sizeof *h);
            if (h) r->pieces = h;
            size_t *ps = h ? (size_t *)sdiff__realloc(r->piece_size, (size_t)cap * sizeof *ps) : NULL;
            if (ps) r->piece_size = ps;
            if (!h || !ps) {
                sdiff__be_fail(be, SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
                return false;
            }
            r->cap_pieces = cap;
        }
        const size_t bytes = want - r->mapped;
        const sdiff__cu_mem_prop prop = sdiff__cuda_mem_prop(cb);
        sdiff__cu_mem_access access;
        memset(&access, 0, sizeof access);
        access.location = prop.location;
        access.flags = SDIFF__CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
        CUmemGenericAllocationHandle h = 0;
        CUresult e = sdiff__g_cu.cuMemCreate(&h, bytes, &prop, 0);
        if (e == SDIFF__CUDA_ERROR_OUT_OF_MEMORY) return false; /* the arena reports it */
        if (!SDIFF__CUDA_CHECK_GEN(be, e, (const char *)NULL)) return false;
        if (!SDIFF__CU(be, cuMemMap(r->base + r->mapped, bytes, 0, h, 0))) {
            sdiff__g_cu.cuMemRelease(h);
            return false;
        }
        if (!SDIFF__CU(be, cuMemSetAccess(r->base + r->mapped, bytes, &access, 1))) {
            sdiff__g_cu.cuMemUnmap(r->base + r->mapped, bytes);
            sdiff__g_cu.cuMemRelease(h);
            return false;
        }
        r->pieces[r->n_pieces] = h;
        r->piece_size[r->n_pieces++] = bytes;
        r->mapped = want;
        cb->mem_used += bytes;
        if (cb->mem_used > cb->mem_peak) cb->mem_peak = cb->mem_used;
    }
    *size = r->mapped;
    return true;
}
SDIFF__PRIVATE void sdiff__cuda_range_free(sdiff__backend *be, void *base) {
    sdiff__cuda *cb = SDIFF__CUDA(be);
    sdiff__g_cu.cuCtxSetCurrent(cb->ctx); /* even on a failed backend (teardown) */
    sdiff__cuda_range **pp = &cb->ranges;
    while (*pp && (*pp)->base != SDIFF__DPTR(base)) pp = &(*pp)->next;
    sdiff__cuda_range *r = *pp;
    if (!r) return;
    *pp = r->next;
    if (r->mapped) sdiff__g_cu.cuStreamSynchronize(cb->stream); /* kernels may still be reading it */
    CUdeviceptr at = r->base;
    for (int i = 0; i < r->n_pieces; at += r->piece_size[i++]) { /* unmapped as mapped: piece by piece */
        sdiff__g_cu.cuMemUnmap(at, r->piece_size[i]);
        sdiff__g_cu.cuMemRelease(r->pieces[i]);
    }
    sdiff__g_cu.cuMemAddressFree(r->base, r->capacity);
    cb->mem_used -= SDIFF__MIN(r->mapped, cb->mem_used);
    sdiff__free(r->pieces);
    sdiff__free(r->piece_size);
    sdiff__free(r);
}

SDIFF__PRIVATE void *sdiff__cuda_alloc(sdiff__backend *be, size_t bytes) {
    if (!sdiff__cuda_enter(be)) return NULL;
    CUdeviceptr p = 0;
    CUresult r = sdiff__cuda_mem_alloc(SDIFF__CUDA(be), &p, bytes ? bytes : 256);
    if (r == SDIFF__CUDA_ERROR_OUT_OF_MEMORY) return NULL; /* the caller reports it */
    if (!SDIFF__CUDA_CHECK_GEN(be, r, (const char *)NULL)) return NULL;
    return (void *)(uintptr_t)p;
}
SDIFF__PRIVATE void sdiff__cuda_free(sdiff__backend *be, void *ptr) {
    if (!ptr) return;
    /* frees must happen even on a failed backend (teardown) */
    sdiff__g_cu.cuCtxSetCurrent(SDIFF__CUDA(be)->ctx);
    sdiff__cuda_mem_free(SDIFF__CUDA(be), SDIFF__DPTR(ptr));
}
SDIFF__PRIVATE bool sdiff__cuda_sync(sdiff__backend *be) {
    return SDIFF__CU(be, cuStreamSynchronize(SDIFF__CUDA(be)->stream));
}

SDIFF__PRIVATE void sdiff__cuda_upload(sdiff__backend *be, sdiff__tensor *t, const void *src, sdiff__dtype src_dt) {
    sdiff__cuda *cb = SDIFF__CUDA(be);
    if (!sdiff__cuda_enter(be) || !sdiff__cuda_not_capturing(be, "upload")) return;
    if (!t || (t->dtype != SDIFF__F16 && t->dtype != SDIFF__F32)) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "upload: t must be an F16 or F32 tensor");
        return;
    }
    if (!sdiff__check_transfer(be, "upload", t, src, "source", t->dtype)) return;
    const size_t n = (size_t)sdiff__numel(t), ss = sdiff__dtype_size(src_dt);
    if (!sdiff__cuda_sync(be)) return;
    if ((sdiff__dtype)t->dtype == src_dt) { /* straight from the caller's memory */
        SDIFF__CU(be, cuMemcpyHtoD(SDIFF__DPTR(t->data), src, n * ss));
        return;
    }
    const char *kname = t->dtype == SDIFF__F16 ? (src_dt == SDIFF__F32 ? "cvt_f32_f16" : "cvt_bf16_f16")
                                               : (src_dt == SDIFF__F16 ? "cvt_f16_f32" : "cvt_bf16_f32");
    const size_t ds = sdiff__dtype_size(t->dtype), chunk = SDIFF__CUDA_STAGE_BYTES / 4;
    for (size_t i = 0; i < n && be->status == SDIFF_OK; i += chunk) {
        int64_t cnt = (int64_t)SDIFF__MIN(chunk, n - i);
        if (i && !sdiff__cuda_sync(be)) return; /* the last chunk's kernel is done with the stage */
        if (!SDIFF__CU(be, cuMemcpyHtoD(cb->stage, (const char *)src + i * ss, (size_t)cnt * ss))) return;
        CUdeviceptr d = SDIFF__DPTR((char *)t->data + i * ds), s = cb->stage;
        void *args[] = {&d, &s, &cnt};
        sdiff__cuda_launch(cb, SDIFF__CP_CONVERT, 0, kname, sdiff__cuda_grid(cb, cnt), 1, 256, args);
    }
}

/* The weight file's bytes go to the staging buffer as they are, as many
   output channels at a time as fit, and a kernel reorders and converts them
   into t: no host copy. */
SDIFF__PRIVATE void sdiff__cuda_upload_conv(sdiff__backend *be, sdiff__tensor *t, const void *src, sdiff__dtype src_dt) {
    sdiff__cuda *cb = SDIFF__CUDA(be);
    if (!sdiff__cuda_enter(be) || !sdiff__cuda_not_capturing(be, "upload_conv") ||
        !sdiff__check_upload_conv(be, t, src, SDIFF__F16))
        return;
    const int64_t co = t->ne[0], kk = t->ne[1] * t->ne[2], ci = t->ne[3];
    const size_t ss = sdiff__dtype_size(src_dt), row = (size_t)(ci * kk) * ss;
    if (row > SDIFF__CUDA_STAGE_BYTES) {
        sdiff__be_fail(be, SDIFF_ERR_UNSUPPORTED, "upload_conv: one output channel (%zu bytes) is larger than the "
                       "%zu-byte staging buffer", row, (size_t)SDIFF__CUDA_STAGE_BYTES);
        return;
    }
    const int64_t rows = (int64_t)(SDIFF__CUDA_STAGE_BYTES / row);
    int sdt = src_dt == SDIFF__F32 ? 0 : src_dt == SDIFF__F16 ? 1 : 2;
    for (int64_t o0 = 0; o0 < co && be->status == SDIFF_OK; o0 += rows) {
        int64_t n = SDIFF__MIN(rows, co - o0);
        if (!sdiff__cuda_sync(be) || /* the last chunk's kernel is done with the stage */
            !SDIFF__CU(be, cuMemcpyHtoD(cb->stage, (const char *)src + (size_t)o0 * row, (size_t)n * row)))
            return;
        CUdeviceptr d = SDIFF__DPTR((char *)t->data + (size_t)(o0 * kk * ci) * 2), sp = cb->stage;
        int64_t cii = ci, kki = kk;
        void *args[] = {&d, &sp, &sdt, &n, &cii, &kki};
        sdiff__cuda_launch(cb, SDIFF__CP_CONVERT, 0, "permute_conv_weight", sdiff__cuda_grid(cb, n * ci * kk), 1, 256, args);
    }
}

/* What download and download_image both check: not during a capture, t an F16 or F32 tensor. */
SDIFF__PRIVATE bool sdiff__cuda_download_ok(sdiff__backend *be, const char *op, const sdiff__tensor *t, const void *dst) {
    if (!sdiff__cuda_enter(be) || !sdiff__cuda_not_capturing(be, op)) return false;
    if (!t || (t->dtype != SDIFF__F16 && t->dtype != SDIFF__F32)) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: t must be an F16 or F32 tensor", op);
        return false;
    }
    return sdiff__check_transfer(be, op, t, dst, "destination", t->dtype);
}
SDIFF__PRIVATE void sdiff__cuda_download(sdiff__backend *be, const sdiff__tensor *t, float *dst) {
    sdiff__cuda *cb = SDIFF__CUDA(be);
    if (!sdiff__cuda_download_ok(be, "download", t, dst)) return;
    const size_t n = (size_t)sdiff__numel(t);
    if (t->dtype == SDIFF__F32) {
        if (sdiff__cuda_sync(be)) SDIFF__CU(be, cuMemcpyDtoH(dst, SDIFF__DPTR(t->data), n * 4));
        return;
    }
    const size_t chunk = SDIFF__CUDA_STAGE_BYTES / 4;
    for (size_t i = 0; i < n && be->status == SDIFF_OK; i += chunk) {
        int64_t cnt = (int64_t)SDIFF__MIN(chunk, n - i);
        CUdeviceptr d = cb->stage, s = SDIFF__DPTR((const char *)t->data + i * 2);
        void *args[] = {&d, &s, &cnt};
        sdiff__cuda_launch(cb, SDIFF__CP_CONVERT, 0, "cvt_f16_f32", sdiff__cuda_grid(cb, cnt), 1, 256, args);
        if (be->status == SDIFF_OK && sdiff__cuda_sync(be))
            SDIFF__CU(be, cuMemcpyDtoH(dst + i, cb->stage, (size_t)cnt * 4));
    }
}

SDIFF__PRIVATE void sdiff__cuda_download_image(sdiff__backend *be, const sdiff__tensor *t, uint8_t *dst) {
    sdiff__cuda *cb = SDIFF__CUDA(be);
    if (!sdiff__cuda_download_ok(be, "download_image", t, dst)) return;
    const size_t n = (size_t)sdiff__numel(t), esize = t->dtype == SDIFF__F32 ? 4 : 2;
    int is_f32 = t->dtype == SDIFF__F32;
    for (size_t i = 0; i < n && be->status == SDIFF_OK; i += SDIFF__CUDA_STAGE_BYTES) {
        int64_t cnt = (int64_t)SDIFF__MIN((size_t)SDIFF__CUDA_STAGE_BYTES, n - i);
        CUdeviceptr d = cb->stage, s = SDIFF__DPTR((const char *)t->data + i * esize);
        void *args[] = {&d, &s, &cnt, &is_f32};
        sdiff__cuda_launch(cb, SDIFF__CP_CONVERT, 0, "image_u8", sdiff__cuda_grid(cb, cnt), 1, 256, args);
        if (be->status == SDIFF_OK && sdiff__cuda_sync(be)) SDIFF__CU(be, cuMemcpyDtoH(dst + i, cb->stage, (size_t)cnt));
    }
}

/* >>cuda:gemm ==============================================================
   y[M,N] = x[M,K] . w[N,K]^T. On Hopper through sdiff's own kernel
   (sdiff__cuda_gemm_tma: tools/kernels/gemm_kernel_sm90.cu) wherever the TMA
   takes the operands; cuBLASLt's Hopper kernels are flagged by
   compute-sanitizer racecheck (tools/PERF.md, S12), and ours fuses GEGLU.
   Elsewhere, and on other GPUs, through cuBLASLt. cuBLASLt is column-major, so
   it computes y^T[N,M] = w . x^T: A = w seen as a column-major [K,N] matrix
   (ld K) transposed, B = x seen as [K,M] (ld = x's row stride, so a column
   view works), C = D = y^T with ld N. The bias rides in the epilogue
   (a vector over D's rows = N), the residual is C with beta = 1. Each shape
   (and pointer alignment, which cuBLASLt's choice depends on) gets its
   descriptors and a heuristic algorithm once; later calls reuse them.
   ========================================================================= */
SDIFF__PRIVATE int sdiff__cuda_align(const void *p) {
    uintptr_t u = (uintptr_t)p;
    int a = 256;
    while (a > 2 && (u % (uintptr_t)a)) a >>= 1;
    return a;
}
SDIFF__PRIVATE void sdiff__cuda_plan_destroy(sdiff__cuda_gemm_plan *p) {
    sdiff__cuda_libs *L = &sdiff__g_cu;
    if (p->desc) L->cublasLtMatmulDescDestroy(p->desc);
    if (p->la) L->cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb) L->cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc) L->cublasLtMatrixLayoutDestroy(p->lc);
    memset(p, 0, sizeof *p);
}
SDIFF__PRIVATE sdiff__cuda_gemm_plan *sdiff__cuda_plan_get(sdiff__cuda *cb, const char *op, int64_t m, int64_t n,
                                                         int64_t k, int64_t lda, int epilogue, int beta,
                                                         const int align[4]) {
    for (int i = 0; i < cb->n_plans; i++) {
        sdiff__cuda_gemm_plan *p = &cb->plans[i];
        if (p->m == m && p->n == n && p->k == k && p->lda == lda && p->epilogue == epilogue && p->beta == beta &&
            !memcmp(p->align, align, sizeof p->align))
            return p;
    }
    sdiff__backend *be = &cb->be;
    if (cb->n_plans == cb->cap_plans) {
        int cap = cb->cap_plans ? 2 * cb->cap_plans : 64;
        sdiff__cuda_gemm_plan *np = (sdiff__cuda_gemm_plan *)sdiff__realloc(cb->plans, (size_t)cap * sizeof *np);
        if (!np) { sdiff__be_fail(be, SDIFF_ERR_OUT_OF_MEMORY, "%s: out of host memory for GEMM plans", op); return NULL; }
        cb->plans = np;
        cb->cap_plans = cap;
    }
    sdiff__cuda_gemm_plan p;
    memset(&p, 0, sizeof p);
    p.m = m; p.n = n; p.k = k; p.lda = lda; p.epilogue = epilogue; p.beta = beta;
    memcpy(p.align, align, sizeof p.align);
    const int32_t opt = SDIFF__CUBLAS_OP_T, opn = SDIFF__CUBLAS_OP_N, bias_type = SDIFF__CUDA_R_16F;
    const uint32_t epi = (uint32_t)epilogue;
    const uint64_t ws = SDIFF__CUDA_LT_WS_BYTES;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t res;
    int n_res = 0;
    memset(&res, 0, sizeof res);
    bool ok = SDIFF__LT(be, cublasLtMatmulDescCreate(&p.desc, SDIFF__CUBLAS_COMPUTE_32F, SDIFF__CUDA_R_32F)) &&
              SDIFF__LT(be, cublasLtMatmulDescSetAttribute(p.desc, SDIFF__CUBLASLT_MATMUL_DESC_TRANSA, &opt, sizeof opt)) &&
              SDIFF__LT(be, cublasLtMatmulDescSetAttribute(p.desc, SDIFF__CUBLASLT_MATMUL_DESC_TRANSB, &opn, sizeof opn)) &&
              SDIFF__LT(be, cublasLtMatmulDescSetAttribute(p.desc, SDIFF__CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi)) &&
              (epilogue != SDIFF__CUBLASLT_EPILOGUE_BIAS ||
               SDIFF__LT(be, cublasLtMatmulDescSetAttribute(p.desc, SDIFF__CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                           &bias_type, sizeof bias_type))) &&
              SDIFF__LT(be, cublasLtMatrixLayoutCreate(&p.la, SDIFF__CUDA_R_16F, (uint64_t)k, (uint64_t)n, k)) &&
              SDIFF__LT(be, cublasLtMatrixLayoutCreate(&p.lb, SDIFF__CUDA_R_16F, (uint64_t)k, (uint64_t)m, lda)) &&
              SDIFF__LT(be, cublasLtMatrixLayoutCreate(&p.lc, SDIFF__CUDA_R_16F, (uint64_t)n, (uint64_t)m, n)) &&
              SDIFF__LT(be, cublasLtMatmulPreferenceCreate(&pref)) &&
              SDIFF__LT(be, cublasLtMatmulPreferenceSetAttribute(pref, SDIFF__CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                                  &ws, sizeof ws));
    for (int i = 0; ok && i < 4; i++) {
        const uint32_t a = (uint32_t)align[i];
        ok = SDIFF__LT(be, cublasLtMatmulPreferenceSetAttribute(pref, SDIFF__CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES + i,
                                                                &a, sizeof a));
    }
    if (ok) ok = SDIFF__LT(be, cublasLtMatmulAlgoGetHeuristic(cb->lt, p.desc, p.la, p.lb, p.lc, p.lc, pref, 1, &res, &n_res));
    if (pref) sdiff__g_cu.cublasLtMatmulPreferenceDestroy(pref);
    if (ok && n_res < 1) {
        sdiff__be_fail(be, SDIFF_ERR_BACKEND, "%s: cuBLASLt has no algorithm for M=%lld N=%lld K=%lld lda=%lld "
                       "(alignments %d/%d/%d/%d bytes)", op, (long long)m, (long long)n, (long long)k,
                       (long long)lda, align[0], align[1], align[2], align[3]);
        ok = false;
    }
    if (!ok) { sdiff__cuda_plan_destroy(&p); return NULL; }
    /* tools/lt_census.c reads these lines (sdiff -v) to replay every GEMM shape of a generation */
    sdiff__log(be->log, SDIFF_LOG_DEBUG, "cuda", "gemm plan: %lld %lld %lld %lld %d %d %d %d %d %d (M N K lda epilogue "
               "beta alignments)", (long long)m, (long long)n, (long long)k, (long long)lda, epilogue, beta, align[0],
               align[1], align[2], align[3]);
    p.algo = res.algo;
    cb->plans[cb->n_plans] = p;
    return &cb->plans[cb->n_plans++];
}
/* The Hopper GEMM: y [m][n] (row stride ldy; fp16, or fp32 with f32) = alpha a [m][k] (row
   stride lda) . w^T (+ bias) (+ res, row stride ldr, may be y); geglu: w has 2n rows (bias 2n) and
   y = h * gelu(g) of the layer's halves (the kernel's header). w's rows are ldw apart. Chooses the
   tile and split-K (sdiff__cu_gemm_pick; f32 is the one 256 x 128 tile). False, nothing launched,
   where the kernel cannot take the operands: off Hopper, bases not 16-byte aligned, lda or k not
   multiples of 8 (the TMA's 16-byte strides), sizes past 32 bits. */
SDIFF__PRIVATE bool sdiff__cuda_gemm_tma(sdiff__cuda *cb, void *y, int64_t ldy, const void *a, int64_t lda, const void *w,
                                         int64_t ldw, const void *bias, const void *res, int64_t ldr, int64_t m, int64_t n,
                                         int64_t k, int geglu, bool f32, float alpha) {
    if (!cb->tma || !sdiff__cuda_al16(a) || !sdiff__cuda_al16(w) || lda % 8 || ldw % 8 || k % 8 || m >= INT32_MAX ||
        n >= INT32_MAX / 2 || k >= INT32_MAX)
        return false;
    int split = 1, tile = 3;
    if (!f32) tile = sdiff__cu_gemm_pick(m, n, k, geglu, cb->n_sm, cb->clusters ? 8 : 1, &split);
    /* the tensor maps go into the launch by value, so a captured graph keeps its own copies */
    unsigned char buf[2 * 128 + 64], *maps = buf + ((64 - (uintptr_t)buf % 64) % 64); /* 64-byte aligned */
    void *mp[2] = {maps, maps + 128};
    const int r = sdiff__cu_gemm_maps(sdiff__g_cu.cuTensorMapEncodeTiled, mp, a, lda, m, w, ldw, geglu ? 2 * n : n, k, tile);
    if (r != 0) { /* not expected (the checks above are the TMA's): said, and the caller takes cuBLASLt */
        sdiff__log(cb->be.log, SDIFF_LOG_DEBUG, "cuda", "gemm: cuTensorMapEncodeTiled: %s; on cuBLASLt",
                   sdiff__cu_errstr((CUresult)r));
        return false;
    }
    unsigned grid[3], threads;
    int tiles_n, n_tiles, M = (int)m, N = (int)n, KT = (int)((k + 63) / 64);
    sdiff__cu_gemm_launch_dims(m, n, geglu, tile, split, cb->n_sm, grid, &threads, &tiles_n, &n_tiles);
    CUdeviceptr db = SDIFF__DPTR(bias), dr = SDIFF__DPTR(res), dy = SDIFF__DPTR(y);
    long long ly = ldy, lr = ldr;
    void *args[] = {mp[0], mp[1], &db, &dr, &dy, &M, &N, &KT, &tiles_n, &n_tiles, &ly, &lr, &alpha};
    const unsigned block[3] = {threads, 1, 1};
    sdiff__cuda_launch_cluster(cb, SDIFF__CP_GEMM_TMA, f32 ? SDIFF__CU_GEMM_TILES : tile, geglu ? "sdiff_gemm_tma_geglu" : "sdiff_gemm_tma", grid, block,
                               sdiff__cu_gemm_smem(tile), split > 1 ? (unsigned)split : 0, args);
    return true;
}
/* d[M,N] = a[M,K] (row stride lda) . w[N,K]^T + bias[N] + c[M,N]; bias and c
   optional; d may be c. All F16 device pointers. */
SDIFF__PRIVATE void sdiff__cuda_gemm(sdiff__cuda *cb, const char *op, void *d, const void *a, int64_t lda,
                                     const void *w, const void *bias, const void *c, int64_t m, int64_t n, int64_t k) {
    sdiff__backend *be = &cb->be;
    if (be->status != SDIFF_OK || sdiff__cuda_gemm_tma(cb, d, n, a, lda, w, k, bias, c, n, m, n, k, 0, false, 1.0f)) return;
    const int epilogue = bias ? SDIFF__CUBLASLT_EPILOGUE_BIAS : SDIFF__CUBLASLT_EPILOGUE_DEFAULT;
    /* cuBLASLt's A is w, its B is x */
    const int align[4] = {sdiff__cuda_align(w), sdiff__cuda_align(a), sdiff__cuda_align(c ? c : d), sdiff__cuda_align(d)};
    sdiff__cuda_gemm_plan *p = sdiff__cuda_plan_get(cb, op, m, n, k, lda, epilogue, c != NULL, align);
    if (!p) return;
    if (bias) {
        const void *bp = bias;
        if (!SDIFF__LT(be, cublasLtMatmulDescSetAttribute(p->desc, SDIFF__CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp)))
            return;
    }
    const float alpha = 1.0f, beta = c ? 1.0f : 0.0f;
    SDIFF__LT(be, cublasLtMatmul(cb->lt, p->desc, &alpha, w, p->la, a, p->lb, &beta, c ? c : d, p->lc, d, p->lc,
                                 &p->algo, (void *)(uintptr_t)cb->lt_ws, SDIFF__CUDA_LT_WS_BYTES, cb->stream));
}

/* Strided-batched GEMMs for attention's math path, in cuBLASLt's own
   column-major terms: D[m,n] = alpha op(A) op(B) (beta 0, C = D), A and B
   fp16, fp32 compute, D fp32 or fp16 (key.ctype), key.batch matrices
   key.sa / sb / sc elements apart. Stored A is [k,m] (transa T) or [m,k]
   (N) with ld lda; B [k,n] (transb N) with ld ldb; D [m,n] with ld ldc.
   A shape cuBLASLt has no algorithm for is cached as unusable (the caller
   takes another route) instead of failing the backend. */
SDIFF__PRIVATE void sdiff__cuda_bplan_destroy(sdiff__cuda_bgemm_plan *p) {
    sdiff__cuda_libs *L = &sdiff__g_cu;
    if (p->desc) L->cublasLtMatmulDescDestroy(p->desc);
    if (p->la) L->cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb) L->cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc) L->cublasLtMatrixLayoutDestroy(p->lc);
    memset(p, 0, sizeof *p);
}
SDIFF__PRIVATE bool sdiff__cuda_layout(sdiff__backend *be, cublasLtMatrixLayout_t *l, int type, int64_t rows,
                                       int64_t cols, int64_t ld, int32_t batch, int64_t stride) {
    return SDIFF__LT(be, cublasLtMatrixLayoutCreate(l, type, (uint64_t)rows, (uint64_t)cols, ld)) &&
           (batch == 1 ||
            (SDIFF__LT(be, cublasLtMatrixLayoutSetAttribute(*l, SDIFF__CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch,
                                                             sizeof batch)) &&
             SDIFF__LT(be, cublasLtMatrixLayoutSetAttribute(*l, SDIFF__CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                             &stride, sizeof stride))));
}
/* NULL: the backend failed. */
SDIFF__PRIVATE sdiff__cuda_bgemm_plan *sdiff__cuda_bplan_get(sdiff__cuda *cb, const char *op,
                                                           const sdiff__cuda_bgemm_key *key) {
    for (int i = 0; i < cb->n_bplans; i++)
        if (!memcmp(&cb->bplans[i].key, key, sizeof *key)) return &cb->bplans[i];
    sdiff__backend *be = &cb->be;
    if (cb->n_bplans == cb->cap_bplans) {
        int cap = cb->cap_bplans ? 2 * cb->cap_bplans : 16;
        sdiff__cuda_bgemm_plan *np = (sdiff__cuda_bgemm_plan *)sdiff__realloc(cb->bplans, (size_t)cap * sizeof *np);
        if (!np) { sdiff__be_fail(be, SDIFF_ERR_OUT_OF_MEMORY, "%s: out of host memory for GEMM plans", op); return NULL; }
        cb->bplans = np;
        cb->cap_bplans = cap;
    }
    sdiff__cuda_bgemm_plan p;
    memset(&p, 0, sizeof p);
    p.key = *key;
    const int32_t ta = key->transa, tb = key->transb;
    const uint64_t ws = SDIFF__CUDA_LT_WS_BYTES;
    const bool at = ta == SDIFF__CUBLAS_OP_T, bt = tb == SDIFF__CUBLAS_OP_T;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t res;
    int n_res = 0;
    memset(&res, 0, sizeof res);
    bool ok = SDIFF__LT(be, cublasLtMatmulDescCreate(&p.desc, SDIFF__CUBLAS_COMPUTE_32F, SDIFF__CUDA_R_32F)) &&
              SDIFF__LT(be, cublasLtMatmulDescSetAttribute(p.desc, SDIFF__CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta)) &&
              SDIFF__LT(be, cublasLtMatmulDescSetAttribute(p.desc, SDIFF__CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb)) &&
              sdiff__cuda_layout(be, &p.la, SDIFF__CUDA_R_16F, at ? key->k : key->m, at ? key->m : key->k, key->lda,
                                 key->batch, key->sa) &&
              sdiff__cuda_layout(be, &p.lb, SDIFF__CUDA_R_16F, bt ? key->n : key->k, bt ? key->k : key->n, key->ldb,
                                 key->batch, key->sb) &&
              sdiff__cuda_layout(be, &p.lc, key->ctype, key->m, key->n, key->ldc, key->batch, key->sc) &&
              SDIFF__LT(be, cublasLtMatmulPreferenceCreate(&pref)) &&
              SDIFF__LT(be, cublasLtMatmulPreferenceSetAttribute(pref, SDIFF__CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                                  &ws, sizeof ws));
    for (int i = 0; ok && i < 4; i++) {
        const uint32_t a = (uint32_t)key->align[i];
        ok = SDIFF__LT(be, cublasLtMatmulPreferenceSetAttribute(pref, SDIFF__CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES + i,
                                                                &a, sizeof a));
    }
    if (ok) {
        /* not checked: "no algorithm" (NOT_SUPPORTED, or zero results) is an answer here */
        cublasStatus_t st = sdiff__g_cu.cublasLtMatmulAlgoGetHeuristic(cb->lt, p.desc, p.la, p.lb, p.lc, p.lc, pref, 1,
                                                                       &res, &n_res);
        p.usable = st == 0 && n_res >= 1;
        if (!p.usable)
            sdiff__log(be->log, SDIFF_LOG_INFO, "cuda", "%s: cuBLASLt has no algorithm for batched M=%lld N=%lld "
                       "K=%lld (lda %lld, ldb %lld, ldc %lld, batch %d, %s): %s; taking the slower route",
                       op, (long long)key->m, (long long)key->n, (long long)key->k, (long long)key->lda,
                       (long long)key->ldb, (long long)key->ldc, key->batch,
                       key->ctype == SDIFF__CUDA_R_32F ? "fp32 out" : "fp16 out",
                       st ? sdiff__lt_errstr(st) : "no results");
    }
    if (pref) sdiff__g_cu.cublasLtMatmulPreferenceDestroy(pref);
    if (!ok) { sdiff__cuda_bplan_destroy(&p); return NULL; }
    if (p.usable)
        sdiff__log(be->log, SDIFF_LOG_DEBUG, "cuda", "batched gemm plan: %lld %lld %lld %lld %lld %lld %lld %lld %lld %d %d "
                   "%d %d %d %d %d %d (m n k lda ldb ldc sa sb sc transa transb ctype batch alignments)",
                   (long long)key->m, (long long)key->n, (long long)key->k, (long long)key->lda, (long long)key->ldb,
                   (long long)key->ldc, (long long)key->sa, (long long)key->sb, (long long)key->sc, key->transa,
                   key->transb, key->ctype, key->batch, key->align[0], key->align[1], key->align[2], key->align[3]);
    p.algo = res.algo;
    cb->bplans[cb->n_bplans] = p;
    return &cb->bplans[cb->n_bplans++];
}
/* Runs key (its alignments are filled in here from the pointers) on a, b
   -> d. 1: done; 0: cuBLASLt has no algorithm, nothing ran; -1: the backend
   failed. */
SDIFF__PRIVATE int sdiff__cuda_bgemm(sdiff__cuda *cb, const char *op, sdiff__cuda_bgemm_key key, float alpha,
                                     const void *a, const void *b, void *d) {
    sdiff__backend *be = &cb->be;
    if (be->status != SDIFF_OK) return -1;
    key.align[0] = sdiff__cuda_align(a);
    key.align[1] = sdiff__cuda_align(b);
    key.align[2] = key.align[3] = sdiff__cuda_align(d);
    sdiff__cuda_bgemm_plan *p = sdiff__cuda_bplan_get(cb, op, &key);
    if (!p) return -1;
    if (!p->usable) return 0;
    const float beta = 0.0f;
    return SDIFF__LT(be, cublasLtMatmul(cb->lt, p->desc, &alpha, a, p->la, b, p->lb, &beta, d, p->lc, d, p->lc,
                                        &p->algo, (void *)(uintptr_t)cb->lt_ws, SDIFF__CUDA_LT_WS_BYTES, cb->stream))
               ? 1 : -1;
}

/* >>cuda:ops ===============================================================
   The op table. Each validates with sdiff.h's shared sdiff__check_<op> (so
   the CPU backend's arguments and messages), then launches. Elementwise kernels take `vec` = every 8-element chunk is an
   aligned 16-byte vector.
   ========================================================================= */
SDIFF__PRIVATE void sdiff__cuda_act_launch(sdiff__cuda *cb, void *y, const void *x, const void *r, int64_t n,
                                           sdiff__act act) {
    CUdeviceptr dy = SDIFF__DPTR(y), dx = SDIFF__DPTR(x), dr = SDIFF__DPTR(r);
    int a = (int)act, vec = n % 8 == 0 && sdiff__cuda_al16(y) && sdiff__cuda_al16(x) && (!r || sdiff__cuda_al16(r));
    void *args[] = {&dy, &dx, &dr, &n, &a, &vec};
    sdiff__cuda_launch(cb, SDIFF__CP_ELEMENTWISE, 0, "activate", sdiff__cuda_grid(cb, (n + 7) / 8), 1, 256, args);
}

/* The scratch (im2col; attention's scores): grown only outside a capture (a capture must find it
   big enough already: the first, eager step sizes it). */
SDIFF__PRIVATE bool sdiff__cuda_reserve(sdiff__cuda *cb, CUdeviceptr *buf, size_t *size, size_t need, const char *op) {
    if (*size >= need) return true;
    sdiff__backend *be = &cb->be;
    if (cb->capturing) {
        sdiff__be_fail(be, SDIFF_ERR_BACKEND, "%s: needs %zu bytes of scratch during CUDA graph capture but only %zu "
                       "are allocated (run the same shapes once outside a capture first)", op, need, *size);
        return false;
    }
    if (!sdiff__cuda_sync(be)) return false;
    sdiff__cuda_mem_free(cb, *buf);
    *buf = 0;
    *size = 0;
    CUresult r = sdiff__cuda_mem_alloc(cb, buf, need);
    if (r != SDIFF__CUDA_SUCCESS) {
        *buf = 0;
        sdiff__be_fail(be, r == SDIFF__CUDA_ERROR_OUT_OF_MEMORY ? SDIFF_ERR_OUT_OF_MEMORY : SDIFF_ERR_BACKEND,
                       "%s: could not allocate %zu MiB of scratch: %s", op, need >> 20, sdiff__cu_errstr(r));
        return false;
    }
    *size = need;
    return true;
}

SDIFF__PRIVATE void sdiff__cuda_linear(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                       const sdiff__tensor *w, const sdiff__tensor *bias, sdiff__act act,
                                       const sdiff__tensor *residual) {
    const char *op = "linear";
    if (!sdiff__cuda_enter(be) || !sdiff__check_linear(be, y, x, w, bias, act, residual, SDIFF__F16, SDIFF__F16)) return;
    const int64_t m = sdiff__rows(x), k = sdiff__cols(x), n = w->ne[0];
    sdiff__cuda *cb = SDIFF__CUDA(be);
    const void *bp = bias ? bias->data : NULL, *rp = residual ? residual->data : NULL;
    if (act == SDIFF__ACT_NONE) {
        sdiff__cuda_gemm(cb, op, y->data, x->data, x->row_stride, w->data, bp, rp, m, n, k);
        return;
    }
    if (act == SDIFF__ACT_GEGLU) {
        /* fused into the Hopper GEMM's epilogue; else the layer's 2N outputs into scratch, then
           the geglu kernel (and the residual after) */
        if (sdiff__cuda_gemm_tma(cb, y->data, n / 2, x->data, x->row_stride, w->data, k, bp, rp, n / 2, m, n / 2, k, 1,
                                 false, 1.0f))
            return;
        if (residual && residual->data == y->data) {
            sdiff__be_fail(be, SDIFF_ERR_UNSUPPORTED, "linear: GEGLU with a residual that aliases y (off Hopper)");
            return;
        }
        if (!sdiff__cuda_reserve(cb, &cb->scratch, &cb->scratch_size, (size_t)(m * n * 2), op)) return;
        sdiff__cuda_gemm(cb, op, (void *)(uintptr_t)cb->scratch, x->data, x->row_stride, w->data, bp, NULL, m, n, k);
        int64_t rows = m, nh = n / 2;
        CUdeviceptr dy = SDIFF__DPTR(y->data), dt = cb->scratch; /* scratch: 256-byte aligned */
        int vec = nh % 8 == 0 && sdiff__cuda_al16(y->data);
        void *args[] = {&dy, &dt, &rows, &nh, &vec};
        sdiff__cuda_launch(cb, SDIFF__CP_ELEMENTWISE, 0, "geglu", sdiff__cuda_grid(cb, (m * nh + 7) / 8), 1, 256, args);
        if (residual) sdiff__cuda_act_launch(cb, y->data, y->data, rp, m * nh, SDIFF__ACT_NONE);
        return;
    }
    /* act(x.w + b) + residual: the GEMM writes y, then one fused pass
       applies the activation and adds the residual (which therefore must
       not be y itself) */
    if (residual && residual->data == y->data) {
        sdiff__be_fail(be, SDIFF_ERR_UNSUPPORTED, "linear: an activation with a residual that aliases y");
        return;
    }
    sdiff__cuda_gemm(cb, op, y->data, x->data, x->row_stride, w->data, bp, NULL, m, n, k);
    sdiff__cuda_act_launch(cb, y->data, y->data, rp, m * n, act);
}


/* The TMA convolution (Hopper; tools/kernels/conv_kernel_sm90.cu) of x [bn, h, wd, ci] with w
   [co, kh, kw, ci] onto the ho x wo output grid at stride 1..8: output (oy, ox) reads input
   (stride oy - padh + ky, stride ox - padw + kx). phase < 0: y [bn, ho, wo, co]; phase 0..3
   (stride 1): one output phase of a nearest 2x upsampling's convolution into y [bn, 2 ho, 2 wo,
   co] (the kernel's header). res (optional): y's
   layout (res_px 1, res_ld co), or a row per res_px output pixels (phase < 0). Chooses the tile and
   the split-K cluster (sdiff__cu_conv2d_tma_pick). False, with nothing launched, when no tile's box
   fits the output grid or the driver cannot make the tensor maps; the caller has checked channels
   in 64s, 16-byte aligned x and w and 32-bit sizes. */
SDIFF__PRIVATE bool sdiff__cuda_conv_tma(sdiff__cuda *cb, void *y, const void *x, const void *w, const void *bias,
                                         const void *res, int res_px, int res_ld, int64_t bn, int64_t h, int64_t wd,
                                         int64_t ci, int64_t co, int kh, int kw, int64_t ho, int64_t wo, int stride,
                                         int padh, int padw, int phase) {
    if (!cb->tma || stride < 1 || stride > 8) return false;
    unsigned boxes[5][3];
    int box_ok[5];
    bool any = false;
    for (int t = 0; t < 5; t++) {
        box_ok[t] = sdiff__cu_conv2d_tma_box((int)ho, (int)wo, sdiff__cu_conv2d_tma_tiles[t][0], boxes[t]) &&
                    boxes[t][0] * stride <= 256 && boxes[t][1] * stride <= 256; /* the input box, in the TMA's limit */
        any = any || box_ok[t];
    }
    if (!any) return false;
    const int64_t m = bn * ho * wo, k = (int64_t)kh * kw * ci;
    int fit[9], split = 1;
    fit[0] = fit[1] = cb->n_sm;
    for (int cs = 2; cs <= 8; cs++) /* every variant is one block per SM: the 128-wide one stands for all */
        fit[cs] = cb->clusters ? sdiff__cuda_clusters_fit(cb, SDIFF__CP_CONV_TMA, 1, "sdiff_conv2d_fwd_tma", 384,
                                                          cb->smem_optin, cs, cb->conv_clusters)
                               : 0; /* no split-K */
    const int tile = sdiff__cu_conv2d_tma_pick(m, (int)co, k / 64, fit, box_ok, &split);
    /* the tensor maps go into the launch by value, so a captured graph keeps its own copies */
    unsigned char buf[2 * 128 + 64], *maps = buf + ((64 - (uintptr_t)buf % 64) % 64); /* 64-byte aligned */
    void *mp[2] = {maps, maps + 128};
    const int r = sdiff__cu_conv2d_tma_maps(sdiff__g_cu.cuTensorMapEncodeTiled, mp, x, w, (int)bn, (int)h, (int)wd,
                                            (int)ci, (int)co, k, boxes[tile], sdiff__cu_conv2d_tma_tiles[tile][1], stride);
    if (r != 0) { /* not expected (the checks are the TMA's): said, and the caller takes another kernel */
        sdiff__log(cb->be.log, SDIFF_LOG_DEBUG, "cuda", "conv2d: cuTensorMapEncodeTiled: %s; not on the TMA kernel",
                   sdiff__cu_errstr((CUresult)r));
        return false;
    }
    CUdeviceptr db = SDIFF__DPTR(bias), dr = SDIFF__DPTR(res), dy = SDIFF__DPTR(y);
    int M = (int)m, Ho = (int)ho, Wo = (int)wo, C = (int)ci, KW = kw, KT = (int)(k / 64), Co = (int)co,
        vec = co % 8 == 0 && sdiff__cuda_al16(y) && (!res || (sdiff__cuda_al16(res) && res_ld % 8 == 0));
    void *args[] = {mp[0], mp[1], &db, &dr, &dy, &M, &Ho, &Wo, &C, &KW, &KT, &padh, &padw, &stride, &Co, &vec, &phase,
                    &res_px, &res_ld};
    unsigned grid[3], block[3], smem;
    sdiff__cu_conv2d_tma_launch_dims(tile, split, m, (int)co, grid, block, &smem);
    sdiff__cuda_launch_cluster(cb, SDIFF__CP_CONV_TMA, tile, "sdiff_conv2d_fwd_tma", grid, block, smem,
                               split > 1 ? (unsigned)split : 0, args);
    return true;
}

/* sdiff__backend.upsample_conv2d: y [B, 2H, 2W, Co] = conv3x3(nearest 2x upsampling of x [B, H, W, C],
   pad 1) + bias, as four 2x2 convolutions of x (one per output phase, summed weights in scratch:
   sdiff_im2col's upsample_conv_weights) on the TMA kernel: 4/9 of the multiply-adds, and no
   upsampled tensor (H100, the VAE decoder: 6.47/6.09 -> 5.86/5.66 ms; tools/PERF.md, S8). The
   summed weights are made on every call, which is 16 Co C values against the 20 M Co C
   multiply-adds saved (M: the small image's pixels): below SDIFF__CUDA_UPCONV_MIN_PIXELS (SD's
   UNet at 512x512, M <= 2048) that cost more than it saved (a UNet step measured 0.4 ms slower
   with the first, scalar transform), so the op declines there. Caching the summed weights per
   weight tensor would lift that. False (nothing done) off Hopper, off the TMA kernel's shapes or
   below that size. */
#define SDIFF__CUDA_UPCONV_MIN_PIXELS 4096
SDIFF__PRIVATE bool sdiff__cuda_upsample_conv2d(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                                const sdiff__tensor *w, const sdiff__tensor *bias) {
    sdiff__cuda *cb = SDIFF__CUDA(be);
    if (!cb->tma || x->nd != 4 || y->nd != 4 || w->nd != 4 || x->dtype != SDIFF__F16 || y->dtype != SDIFF__F16 ||
        w->dtype != SDIFF__F16 || (bias && (bias->dtype != SDIFF__F16 || bias->ne[0] != w->ne[0])) ||
        !sdiff__is_contiguous(x) || !sdiff__is_contiguous(y) || !sdiff__is_contiguous(w))
        return false;
    const int64_t bn = x->ne[0], h = x->ne[1], wd = x->ne[2], ci = x->ne[3], co = w->ne[0];
    if (w->ne[1] != 3 || w->ne[2] != 3 || w->ne[3] != ci || y->ne[0] != bn || y->ne[1] != 2 * h || y->ne[2] != 2 * wd ||
        y->ne[3] != co || ci % 64 || !sdiff__cuda_al16(x->data) || !sdiff__cuda_al16(y->data) ||
        !sdiff__cuda_al16(w->data) || bn * h * wd < SDIFF__CUDA_UPCONV_MIN_PIXELS ||
        4 * h * wd * bn * co >= INT32_MAX || 16 * co * ci >= INT32_MAX)
        return false;
    unsigned box[3];
    int fits = 0;
    for (int t = 0; t < 5; t++) fits |= sdiff__cu_conv2d_tma_box((int)h, (int)wd, sdiff__cu_conv2d_tma_tiles[t][0], box);
    if (!fits || !sdiff__cuda_enter(be)) return false;
    if (!sdiff__cuda_reserve(cb, &cb->scratch, &cb->scratch_size, (size_t)(16 * co * ci * 2), "upsample_conv2d"))
        return true; /* failed: the backend's status says why */
    CUdeviceptr wp = cb->scratch, dw = SDIFF__DPTR(w->data);
    int coi = (int)co, cii = (int)ci;
    void *args[] = {&wp, &dw, &coi, &cii};
    sdiff__cuda_launch(cb, SDIFF__CP_IM2COL, 0, "upsample_conv_weights", sdiff__cuda_grid(cb, 2 * co * ci), 1, 256, args);
    for (int ph = 0; ph < 4 && be->status == SDIFF_OK; ph++) {
        const void *wph = (const char *)(uintptr_t)cb->scratch + (size_t)ph * co * 4 * ci * 2;
        if (!sdiff__cuda_conv_tma(cb, y->data, x->data, wph, bias ? bias->data : NULL, NULL, 1, (int)co, bn, h, wd, ci, co,
                                  2, 2, h, wd, 1, ph >> 1 ? 0 : 1, ph & 1 ? 0 : 1, ph))
            sdiff__be_fail(be, SDIFF_ERR_BACKEND, "upsample_conv2d: the TMA convolution refused phase %d of %lldx%lldx%lld",
                           ph, (long long)h, (long long)wd, (long long)ci);
    }
    return true;
}

SDIFF__PRIVATE void sdiff__cuda_add(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *a, const sdiff__tensor *b) {
    int mode = 0;
    int64_t rows_per_b = 1;
    if (!sdiff__cuda_enter(be) || !sdiff__check_add(be, y, a, b, SDIFF__F16, &mode, &rows_per_b)) return;
    int64_t c = sdiff__cols(a), n = sdiff__numel(a), ldb = b->row_stride;
    sdiff__cuda *cb = SDIFF__CUDA(be);
    CUdeviceptr dy = SDIFF__DPTR(y->data), da = SDIFF__DPTR(a->data), db = SDIFF__DPTR(b->data);
    int vec = c % 8 == 0 && ldb % 8 == 0 && sdiff__cuda_al16(y->data) && sdiff__cuda_al16(a->data) &&
              sdiff__cuda_al16(b->data);
    void *args[] = {&dy, &da, &db, &n, &c, &rows_per_b, &ldb, &mode, &vec};
    sdiff__cuda_launch(cb, SDIFF__CP_ELEMENTWISE, 0, "add", sdiff__cuda_grid(cb, (n + 7) / 8), 1, 256, args);
}

/* The kernel's lincomb_terms, field for field. */
typedef struct sdiff__cuda_lincomb_terms { CUdeviceptr x[SDIFF__LINCOMB_MAX]; float c[SDIFF__LINCOMB_MAX]; int n; } sdiff__cuda_lincomb_terms;
SDIFF__PRIVATE void sdiff__cuda_lincomb(sdiff__backend *be, sdiff__tensor *y, int n, const sdiff__tensor *const *x,
                                        const float *c, float clamp) {
    if (!sdiff__cuda_enter(be) || !sdiff__check_lincomb(be, y, n, x, c, clamp, SDIFF__F16)) return;
    sdiff__cuda_lincomb_terms t;
    memset(&t, 0, sizeof t);
    t.n = n;
    for (int k = 0; k < n; k++) { t.x[k] = SDIFF__DPTR(x[k]->data); t.c[k] = c[k]; }
    CUdeviceptr dy = SDIFF__DPTR(y->data);
    int64_t cnt = sdiff__numel(y);
    int x_f16 = x[0]->dtype == SDIFF__F16, y_f16 = y->dtype == SDIFF__F16;
    void *args[] = {&dy, &t, &cnt, &clamp, &x_f16, &y_f16};
    sdiff__cuda_launch(SDIFF__CUDA(be), SDIFF__CP_ELEMENTWISE, 0, "lincomb", sdiff__cuda_grid(SDIFF__CUDA(be), cnt), 1, 256,
                       args);
}

/* conv2d's routes (checked arguments). A residual of one row per image (sdiff__residual_per_image)
   only the TMA kernel adds itself: the others get rp = NULL from the caller, which adds it after. True
   when the TMA kernel ran. */
SDIFF__PRIVATE bool sdiff__cuda_conv2d_routes(sdiff__cuda *cb, sdiff__tensor *y, const sdiff__tensor *x,
                                              const sdiff__tensor *w, const void *bp, int stride, int pad,
                                              const sdiff__tensor *residual, bool per_image) {
    const char *op = "conv2d";
    sdiff__backend *be = &cb->be;
    int64_t bn = x->ne[0], h = x->ne[1], wd = x->ne[2], ci = x->ne[3];
    int64_t co = w->ne[0], kh = w->ne[1], kw = w->ne[2], ho = y->ne[1], wo = y->ne[2];
    const int64_t m = bn * ho * wo, k = kh * kw * ci;
    /* the residual when it has y's layout (the routes below but the TMA kernel's) */
    const void *rp = residual && !per_image ? residual->data : NULL;
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0 && ho == h && wo == wd) { /* a plain GEMM */
        sdiff__cuda_gemm(cb, op, y->data, x->data, ci, w->data, bp, rp, m, co, k);
        return false;
    }
    /* the kernels' arguments (conv_few_co and conv_few_ci take the same ones: few_args) */
    CUdeviceptr dy = SDIFF__DPTR(y->data), dx = SDIFF__DPTR(x->data), dw = SDIFF__DPTR(w->data), db = SDIFF__DPTR(bp),
                dr = SDIFF__DPTR(rp);
    int B = (int)bn, H = (int)h, W = (int)wd, C = (int)ci, KH = (int)kh, KW = (int)kw, Ho = (int)ho, Wo = (int)wo,
        Co = (int)co;
    void *few_args[] = {&dy, &dx, &dw, &db, &dr, &H, &W, &C, &KH, &KW, &Ho, &Wo, &pad, &Co};
    /* At most 8 output channels (SD's conv_out), stride 1, taps up to 3 x 3, channels in 64s:
       conv_few_co, which reads each input pixel once per 64-channel chunk instead of once per tap
       (H100: the VAE's 512x512 conv_out 0.21 ms on the TMA kernel; tools/PERF.md, S8). */
    if (co <= 8 && stride == 1 && kh <= 3 && kw <= 3 && ci % 64 == 0 && sdiff__cuda_al16(x->data) &&
        sdiff__cuda_al16(w->data) && (cb->conv_force == SDIFF__CONV_AUTO || cb->conv_force == SDIFF__CONV_FEW)) {
        /* fewer tiles than SMs: the channels split over clusters of ks blocks (up to one per chunk) */
        const int64_t tiles_x = (wo + SDIFF__CUDA_CF_TW - 1) / SDIFF__CUDA_CF_TW,
                      tiles = tiles_x * ((ho + SDIFF__CUDA_CF_TH - 1) / SDIFF__CUDA_CF_TH) * bn, chunks = ci / 64;
        int64_t ks = cb->clusters && tiles < cb->n_sm ? (cb->n_sm + tiles - 1) / tiles : 1;
        ks = ks > chunks ? chunks : ks > 8 ? 8 : ks;
        const unsigned grid[3] = {(unsigned)(tiles_x * ks), (unsigned)((ho + SDIFF__CUDA_CF_TH - 1) / SDIFF__CUDA_CF_TH),
                                  (unsigned)bn},
                       blk[3] = {256, 1, 1};
        sdiff__cuda_launch_cluster(cb, SDIFF__CP_IM2COL, 0, "conv_few_co", grid, blk, SDIFF__CUDA_CF_SMEM,
                                   ks > 1 ? (unsigned)ks : 0, few_args);
        return false;
    }
    /* At most 80 values a patch (SD's conv_in: 3 x 3 x 4), stride 1: conv_few_ci. There im2col's K
       is no multiple of 8, so the GEMM would be cuBLASLt's at 2-byte alignment (with the im2col, 15
       us for SD's 64x64 conv_in on an H100; tools/PERF.md, S15). */
    const int64_t few_ci_smem = (64 * SDIFF__CUDA_FCI_STR + co * k + 16 + co) * 2;
    if (stride == 1 && k <= 80 && ci < 64 && co % 16 == 0 && few_ci_smem <= 200 * 1024 && sdiff__cuda_al16(w->data) &&
        !((uintptr_t)y->data & 3) &&
        (cb->conv_force == SDIFF__CONV_AUTO || cb->conv_force == SDIFF__CONV_FEW)) {
        const unsigned grid[3] = {(unsigned)((wo + 63) / 64), (unsigned)ho, (unsigned)bn}, blk[3] = {512, 1, 1};
        sdiff__cuda_launch_ex(cb, SDIFF__CP_IM2COL, 0, "conv_few_ci", grid, blk, (unsigned)few_ci_smem, few_args);
        return false;
    }
    /* The implicit-GEMM tensor-core kernels: channels in 64s (a K tile stays in one tap), 16-byte
       aligned x and w, 32-bit output indices. On Hopper the TMA kernel wherever its boxes fit
       (output rows in boxes of 128 pixels: every level of SD, its downsamplers' stride 2 too), with
       split-K over a cluster where the output alone would leave SMs idle (SD's 16x16 and 8x8
       levels). Elsewhere
       the cp.async kernel where there are enough output rows for 128-row tiles to fill every SM
       several times (M >= 48 x SMs); below that im2col is small and cuBLASLt's split-K GEMM on it
       measured faster (tools/PERF.md). */
    const bool tiles_ok = ci % 64 == 0 && sdiff__cuda_al16(x->data) && sdiff__cuda_al16(w->data) && m * co < INT32_MAX &&
                          co * k < INT32_MAX;
    const int force = cb->conv_force;
    const int res_px = per_image ? (int)(ho * wo) : 1, res_ld = per_image ? (int)residual->row_stride : (int)co;
    if ((force == SDIFF__CONV_AUTO || force == SDIFF__CONV_TMA || force == SDIFF__CONV_FEW) && tiles_ok &&
        (!per_image || residual->row_stride < INT32_MAX) &&
        sdiff__cuda_conv_tma(cb, y->data, x->data, w->data, bp, residual ? residual->data : NULL, res_px, res_ld, bn, h,
                             wd, ci, co, (int)kh, (int)kw, ho, wo, stride, pad, pad, -1))
        return true;
    const bool implicit_ok = tiles_ok && sdiff__numel(x) < INT32_MAX;
    const int route = implicit_ok && (force == SDIFF__CONV_IMPLICIT || (force != SDIFF__CONV_IM2COL && m >= 48 * (int64_t)cb->n_sm))
                          ? SDIFF__CONV_IMPLICIT : SDIFF__CONV_IM2COL;
    int vec = co % 8 == 0 && sdiff__cuda_al16(y->data) && (!rp || sdiff__cuda_al16(rp));
    unsigned grid[3], block[3], smem;
    if (route == SDIFF__CONV_IMPLICIT) {
        const int tile = sdiff__cu_conv2d_pick_tile(m, Co, cb->n_sm, cb->wgmma);
        sdiff__cu_conv2d_launch_dims(tile, m, Co, grid, block, &smem);
        void *args[] = {&dx, &dw, &db, &dr, &dy, &B, &H, &W, &C, &KH, &KW, &Ho, &Wo, &stride, &pad, &Co, &vec};
        sdiff__cuda_launch_ex(cb, tile < 3 ? SDIFF__CP_CONV : SDIFF__CP_CONV_SM90, tile % 3, "sdiff_conv2d_fwd", grid,
                              block, smem, args);
        return false;
    }
    /* rows per im2col chunk: all of them, or as many as the cap allows
       (a multiple of 64, to keep the chunks' output pointers aligned) */
    int64_t rows = (int64_t)(SDIFF_CUDA_IM2COL_MAX / (size_t)(k * 2));
    if (rows >= m) rows = m;
    else rows = rows >= 64 ? rows / 64 * 64 : SDIFF__MAX(rows, (int64_t)1);
    if (!sdiff__cuda_reserve(cb, &cb->scratch, &cb->scratch_size, (size_t)(rows * k * 2), op)) return false;
    int vec_x = ci % 8 == 0 && sdiff__cuda_al16(x->data);
    for (int64_t m0 = 0; m0 < m && be->status == SDIFF_OK; m0 += rows) {
        int64_t mc = SDIFF__MIN(rows, m - m0);
        CUdeviceptr da = cb->scratch;
        void *args[] = {&da, &dx, &m0, &mc, &h, &wd, &ci, &KH, &KW, &ho, &wo, &stride, &pad, &vec_x};
        sdiff__cuda_launch(cb, SDIFF__CP_IM2COL, 0, "im2col", sdiff__cuda_grid(cb, vec_x ? mc * k / 8 : mc * k), 1, 256,
                           args);
        const size_t off = (size_t)(m0 * co) * 2;
        sdiff__cuda_gemm(cb, op, (char *)y->data + off, (const void *)(uintptr_t)cb->scratch, k, w->data, bp,
                         rp ? (const char *)rp + off : NULL, mc, co, k);
    }
    return false;
}
SDIFF__PRIVATE void sdiff__cuda_conv2d(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                       const sdiff__tensor *w, const sdiff__tensor *bias, int stride, int pad,
                                       const sdiff__tensor *residual) {
    if (!sdiff__cuda_enter(be) ||
        !sdiff__check_conv2d(be, y, x, w, bias, stride, pad, residual, SDIFF__F16, SDIFF__F16))
        return;
    const bool per_image = sdiff__residual_per_image(residual, y);
    if (sdiff__cuda_conv2d_routes(SDIFF__CUDA(be), y, x, w, bias ? bias->data : NULL, stride, pad, residual, per_image) ||
        !per_image || be->status != SDIFF_OK)
        return;
    sdiff__tensor rows = *residual; /* [B, Co], its rows as they are */
    rows.nd = 2;
    rows.ne[1] = residual->ne[3];
    rows.ne[2] = rows.ne[3] = 1;
    sdiff__cuda_add(be, y, y, &rows);
}

/* group_norm_cluster's tiling: clusters of cs blocks (1..8; one block is a plain launch), slices
   of ws channels (whole groups; a multiple of 8 for 16-byte loads; at least 16 channels, so a
   row's piece is whole 32-byte sectors, unless the slice is every group), the rows split over a
   cluster's blocks, rpc each, and
   the shared memory that takes (the kernel's layout; at most SDIFF__CUDA_GN_CLUSTER_SMEM and what
   the GPU lets a block have: 227 KB on Hopper, ~99 KB on consumer Blackwell). Of the tilings that
   fit, the one with the least work on its busiest SM: waves x (rpc x ws + SDIFF__CUDA_GN_BLOCK_COST
   + SDIFF__CUDA_GN_CLUSTER_COST when cs > 1), where a wave is as many clusters as the GPU holds at
   once (asked of the driver, sdiff__cuda_gn_clusters_fit: a cluster must fit in one GPC, so an
   H100's 132 SMs hold 15 clusters of 8, not 16, and SD's grids of 16 clusters of 8 ran in two
   rounds, S7-2 in tools/PERF.md). The two costs stand for a block's fixed chain of barriers and
   for the cluster launch and exchange; fitted to a sweep over every cluster size at SD's shapes
   (S7-4, tools/bench_cuda_ops.c), they keep the 8x8 level from becoming many blocks of a few rows and
   a second wave from passing for free. False when
   the GPU has no clusters, a group is over 128 channels (the kernel's four per lane) or no tile
   fits in SDIFF__CUDA_GN_CLUSTER_SMEM: the three-kernel path takes those. */
#define SDIFF__CUDA_GN_CLUSTER_MAX 8              /* portable cluster sizes: up to 8 blocks     */
#define SDIFF__CUDA_GN_THREADS 512                /* the kernel's GN_THREADS                  */
#define SDIFF__CUDA_GN_CLUSTER_SMEM (227 * 1024)  /* all a block may have on Hopper           */
#define SDIFF__CUDA_GN_BLOCK_COST 16384           /* elements' worth of a block's fixed chain  */
#define SDIFF__CUDA_GN_CLUSTER_COST 6144          /* ... and of a cluster's launch and exchange */
typedef struct sdiff__cuda_gn_tiling { int cs, ws, rpc, vec; unsigned smem; } sdiff__cuda_gn_tiling;
/* How many clusters of cs group_norm_cluster blocks the GPU runs at once (asked once per size;
   the kernel's registers allow one block per SM, so its shared memory does not change this). When
   the driver cannot say (before CUDA 12.0), a guess a little under n_sm / cs. */
SDIFF__PRIVATE int sdiff__cuda_gn_clusters_fit(sdiff__cuda *cb, int cs) {
    const unsigned smem = (unsigned)SDIFF__MIN(cb->smem_optin, SDIFF__CUDA_GN_CLUSTER_SMEM);
    return sdiff__cuda_clusters_fit(cb, SDIFF__CP_NORM, 0, "group_norm_cluster", SDIFF__CUDA_GN_THREADS, smem, cs,
                                    cb->gn_clusters);
}
SDIFF__PRIVATE bool sdiff__cuda_gn_cluster_plan(sdiff__cuda *cb, int64_t bn, int64_t p, int64_t c, int groups, bool al16,
                                                sdiff__cuda_gn_tiling *t) {
    const int64_t cg = c / groups;
    if (!cb->clusters || cg > 128) return false;
    double best = -1;
    for (int vec = al16 && c % 8 == 0; vec >= 0 && best < 0; vec--) {
        for (int cs = SDIFF__CUDA_GN_CLUSTER_MAX; cs >= 1; cs--) {
            const int64_t rpc = (p + cs - 1) / cs, fit = sdiff__cuda_gn_clusters_fit(cb, cs);
            for (int gs = 1; gs <= groups; gs++) {
                const int64_t ws = gs * cg, w = vec ? 8 : 1;
                if (groups % gs || ws % w || (ws < 16 && gs < groups)) continue;
                const int64_t tpr = SDIFF__MIN(ws / w, (int64_t)SDIFF__CUDA_GN_THREADS), rpar = SDIFF__CUDA_GN_THREADS / tpr;
#define SDIFF__R4(n) (((n) + 3) / 4 * 4)
                const int64_t bytes = 4 * (SDIFF__R4(4 * gs) + 2 * SDIFF__R4(ws) + SDIFF__R4(rpar * 2 * ws)) + rpc * ws * 2;
#undef SDIFF__R4
                if (bytes > SDIFF__MIN((int64_t)SDIFF__CUDA_GN_CLUSTER_SMEM, (int64_t)cb->smem_optin))
                    break; /* no wider slice fits either (checked by brute force over C <= 8192) */
                const int64_t waves = (bn * (groups / gs) + fit - 1) / fit;
                const double cost = (double)waves * (double)(rpc * ws + SDIFF__CUDA_GN_BLOCK_COST +
                                                             (cs > 1 ? SDIFF__CUDA_GN_CLUSTER_COST : 0));
                if (best < 0 || cost < best) {
                    best = cost;
                    t->cs = cs, t->ws = (int)ws, t->rpc = (int)rpc, t->vec = vec, t->smem = (unsigned)bytes;
                }
            }
        }
    }
    return best >= 0;
}

/* group_norm_regs's load width for a group of cg channels over p positions, x and y (8, 4 or 2
   channels: the widest that divides cg and c and keeps the loads aligned), or 0 where it does not
   apply: more than SDIFF__CUDA_GNR_MAX values in a group (the block's registers), over 128
   channels in a group (its scale and shift in shared memory) or an odd cg. */
#define SDIFF__CUDA_GNR_MAX (64 * 512)   /* the kernel's GNR_ELEMS x its 512 threads */
SDIFF__PRIVATE int sdiff__cuda_gn_regs_width(const sdiff__cuda *cb, int64_t p, int64_t c, int64_t cg, const void *x,
                                             const void *y) {
    if (cb->gn_no_regs || cg > 128 || p * cg > SDIFF__CUDA_GNR_MAX) return 0;
    const uintptr_t a = (uintptr_t)x | (uintptr_t)y;
    for (int w = 8; w >= 2; w /= 2)
        if (cg % w == 0 && c % w == 0 && a % (uintptr_t)(2 * w) == 0) return w;
    return 0;
}
/* group_norm_regs where a group fits its registers (above: SD's smaller levels), else one cluster
   kernel where group_norm_cluster's tile fits (see above); else three kernels
   (sdiff_norm's group_norm_stats, _finalize, _apply): the statistics split each batch item's
   positions over about 2 blocks per SM, the output over about 4 per SM. Their buffer holds
   (mean, rstd) per group, then the partials. */
SDIFF__PRIVATE void sdiff__cuda_group_norm(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                           const sdiff__tensor *gamma, const sdiff__tensor *beta, int groups, float eps,
                                           bool silu) {
    const char *op = "group_norm";
    if (!sdiff__cuda_enter(be) || !sdiff__check_group_norm(be, y, x, gamma, beta, groups, SDIFF__F16, SDIFF__F16))
        return;
    sdiff__cuda *cb = SDIFF__CUDA(be);
    const int64_t bn = x->ne[0], c = sdiff__cols(x), p = sdiff__numel(x) / (bn * c);
    if (c > 8192 || bn > 65535) {
        sdiff__be_fail(be, SDIFF_ERR_UNSUPPORTED, "%s: %lld channels x %lld batch items is above the CUDA backend's "
                       "8192 x 65535", op, (long long)c, (long long)bn);
        return;
    }
    CUdeviceptr dy = SDIFF__DPTR(y->data), dx = SDIFF__DPTR(x->data), dg = SDIFF__DPTR(gamma ? gamma->data : NULL),
                db = SDIFF__DPTR(beta ? beta->data : NULL);
    int ci = (int)c, cg = (int)(c / groups), s_ = silu;
    const int w = sdiff__cuda_gn_regs_width(cb, p, c, cg, x->data, y->data);
    if (w) {
        static const char *const names[9] = {NULL, NULL, "group_norm_regs2", NULL, "group_norm_regs4",
                                             NULL, NULL, NULL, "group_norm_regs8"};
        const int64_t loads = p * cg / w;
        const unsigned grid[3] = {(unsigned)groups, (unsigned)bn, 1},
                       blk[3] = {(unsigned)SDIFF__MIN((loads + 31) / 32 * 32, (int64_t)512), 1, 1};
        void *a[] = {&dy, &dx, &dg, &db, (void *)&p, &ci, &cg, &eps, &s_};
        sdiff__cuda_launch_ex(cb, SDIFF__CP_NORM, 0, names[w], grid, blk, 0, a);
        return;
    }
    sdiff__cuda_gn_tiling t;
    if (sdiff__cuda_gn_cluster_plan(cb, bn, p, c, groups, sdiff__cuda_al16(x->data) && sdiff__cuda_al16(y->data), &t)) {
        const unsigned grid[3] = {(unsigned)t.cs, (unsigned)(c / t.ws), (unsigned)bn},
                       blk[3] = {SDIFF__CUDA_GN_THREADS, 1, 1};
        void *a[] = {&dy, &dx, &dg, &db, (void *)&p, &ci, &cg, &t.ws, &t.rpc, &eps, &s_, &t.vec};
        sdiff__cuda_launch_cluster(cb, SDIFF__CP_NORM, 0, "group_norm_cluster", grid, blk, t.smem,
                                   t.cs > 1 ? (unsigned)t.cs : 0, a);
        return;
    }
    const int64_t want = SDIFF__MAX((int64_t)1, (int64_t)cb->n_sm * 2 / bn);
    const int64_t rpb = SDIFF__MAX((p + want - 1) / want, (p + 1023) / 1024); /* S <= 1024 partials per item */
    const int64_t S = (p + rpb - 1) / rpb, rpa = SDIFF__MAX((p + 2 * want - 1) / (2 * want), (int64_t)1);
    const int64_t A = (p + rpa - 1) / rpa;
    const size_t part_off = ((size_t)(bn * groups * 8) + 255) / 256 * 256;
    if (!sdiff__cuda_reserve(cb, &cb->gn, &cb->gn_size, part_off + (size_t)(bn * S * groups * 8), op)) return;
    const int vec = c % 8 == 0 && sdiff__cuda_al16(x->data) && sdiff__cuda_al16(y->data);
    CUdeviceptr stat = cb->gn, part = cb->gn + part_off;
    int rpbi = (int)rpb, rpai = (int)rpa, si = (int)S, items = (int)bn;
    const unsigned blk[3] = {256, 1, 1}, g1[3] = {(unsigned)S, (unsigned)bn, 1}, g2[3] = {(unsigned)A, (unsigned)bn, 1};
    void *a1[] = {&part, &dx, (void *)&p, &ci, &groups, &rpbi, (void *)&vec};
    const int64_t nch = vec ? c / 8 : c, rpar = 256 / SDIFF__MIN(nch, (int64_t)256); /* the kernel's row-parallel threads */
    sdiff__cuda_launch_ex(cb, SDIFF__CP_NORM, 0, "group_norm_stats", g1, blk, (unsigned)(4 * c + 8 * rpar * c), a1);
    void *af[] = {&stat, &part, (void *)&p, &groups, &si, &rpbi, &cg, &items, &eps};
    sdiff__cuda_launch(cb, SDIFF__CP_NORM, 0, "group_norm_finalize", (unsigned)((bn * groups + 7) / 8), 1, 256, af);
    void *a2[] = {&dy, &dx, &stat, &dg, &db, (void *)&p, &ci, &groups, &rpai, &s_, (void *)&vec};
    sdiff__cuda_launch_ex(cb, SDIFF__CP_NORM, 0, "group_norm_apply", g2, blk, (unsigned)(8 * c), a2);
}

SDIFF__PRIVATE void sdiff__cuda_layer_norm(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                           const sdiff__tensor *gamma, const sdiff__tensor *beta, float eps) {
    if (!sdiff__cuda_enter(be) || !sdiff__check_layer_norm(be, y, x, gamma, beta, SDIFF__F16, SDIFF__F16)) return;
    int64_t c = sdiff__cols(x), rows = sdiff__rows(x);
    CUdeviceptr dy = SDIFF__DPTR(y->data), dx = SDIFF__DPTR(x->data), dg = SDIFF__DPTR(gamma ? gamma->data : NULL),
                db = SDIFF__DPTR(beta ? beta->data : NULL);
    /* the vectorised kernel with the fewest registers that holds a row (K 16-byte chunks a lane) */
    const bool vec = c % 8 == 0 && c <= 2048 && sdiff__cuda_al16(y->data) && sdiff__cuda_al16(x->data) &&
                     (!gamma || sdiff__cuda_al16(gamma->data)) && (!beta || sdiff__cuda_al16(beta->data));
    const char *kernel = !vec       ? "layer_norm"
                         : c <= 512  ? "layer_norm_vec2"   /* SD's 320 */
                         : c <= 768  ? "layer_norm_vec3"   /* 640, CLIP's 768 */
                         : c <= 1280 ? "layer_norm_vec5"   /* 1024, 1280 */
                                     : "layer_norm_vec8";
    void *args[] = {&dy, &dx, &dg, &db, &rows, &c, &eps};
    sdiff__cuda_launch(SDIFF__CUDA(be), SDIFF__CP_NORM, 0, kernel, (unsigned)((rows + 7) / 8), 1, 256, args);
}

SDIFF__PRIVATE void sdiff__cuda_activate(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, sdiff__act act) {
    if (!sdiff__cuda_enter(be) || !sdiff__check_activate(be, y, x, act, SDIFF__F16)) return;
    sdiff__cuda_act_launch(SDIFF__CUDA(be), y->data, x->data, NULL, sdiff__numel(x), act);
}

SDIFF__PRIVATE void sdiff__cuda_upsample(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x) {
    if (!sdiff__cuda_enter(be) || !sdiff__check_upsample(be, y, x, SDIFF__F16)) return;
    sdiff__cuda *cb = SDIFF__CUDA(be);
    int64_t bn = x->ne[0], h = x->ne[1], w = x->ne[2], c = x->ne[3], ho = y->ne[1], wo = y->ne[2];
    CUdeviceptr dy = SDIFF__DPTR(y->data), dx = SDIFF__DPTR(x->data);
    int vec = c % 8 == 0 && sdiff__cuda_al16(y->data) && sdiff__cuda_al16(x->data);
    void *args[] = {&dy, &dx, &bn, &h, &w, &c, &ho, &wo, &vec};
    sdiff__cuda_launch(cb, SDIFF__CP_ELEMENTWISE, 0, "upsample", sdiff__cuda_grid(cb, (sdiff__numel(y) + 7) / 8), 1, 256, args);
}

SDIFF__PRIVATE void sdiff__cuda_concat(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *a, const sdiff__tensor *b) {
    if (!sdiff__cuda_enter(be) || !sdiff__check_concat(be, y, a, b, SDIFF__F16)) return;
    sdiff__cuda *cb = SDIFF__CUDA(be);
    int64_t rows = sdiff__rows(y), ca = sdiff__cols(a), cbn = sdiff__cols(b);
    CUdeviceptr dy = SDIFF__DPTR(y->data), da = SDIFF__DPTR(a->data), db = SDIFF__DPTR(b->data);
    int vec = ca % 8 == 0 && cbn % 8 == 0 && sdiff__cuda_al16(y->data) && sdiff__cuda_al16(a->data) &&
              sdiff__cuda_al16(b->data);
    void *args[] = {&dy, &da, &db, &rows, &ca, &cbn, &vec};
    sdiff__cuda_launch(cb, SDIFF__CP_ELEMENTWISE, 0, "concat", sdiff__cuda_grid(cb, (sdiff__numel(y) + 7) / 8), 1, 256, args);
}

/* The ids come from the host: copied into a backend-owned device buffer
   (synchronously, so not inside a capture). */
SDIFF__PRIVATE void sdiff__cuda_embed(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *table,
                                      const int32_t *ids, int n) {
    const char *op = "embed";
    if (!sdiff__cuda_enter(be) || !sdiff__cuda_not_capturing(be, op) ||
        !sdiff__check_embed(be, y, table, ids, n, SDIFF__F16, SDIFF__F16))
        return;
    sdiff__cuda *cb = SDIFF__CUDA(be);
    if (!sdiff__cuda_reserve(cb, &cb->ids, &cb->ids_size, (size_t)n * 4, op)) return;
    if (!sdiff__cuda_sync(be) || !SDIFF__CU(be, cuMemcpyHtoD(cb->ids, ids, (size_t)n * 4))) return;
    int64_t nn = n, c = table->ne[1];
    CUdeviceptr dy = SDIFF__DPTR(y->data), dt = SDIFF__DPTR(table->data), di = cb->ids;
    int vec = c % 8 == 0 && sdiff__cuda_al16(y->data) && sdiff__cuda_al16(table->data);
    void *args[] = {&dy, &dt, &di, &nn, &c, &vec};
    sdiff__cuda_launch(cb, SDIFF__CP_ELEMENTWISE, 0, "embed", sdiff__cuda_grid(cb, (nn * c + 7) / 8), 1, 256, args);
}

SDIFF__PRIVATE void sdiff__cuda_timestep_embedding(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *t,
                                                   bool flip_sin_to_cos, float freq_shift) {
    if (!sdiff__cuda_enter(be) || !sdiff__check_timestep_embedding(be, y, t, SDIFF__F16)) return;
    sdiff__cuda *cb = SDIFF__CUDA(be);
    int64_t bn = y->ne[0];
    int dim = (int)y->ne[1], flip = flip_sin_to_cos;
    CUdeviceptr dy = SDIFF__DPTR(y->data), dt = SDIFF__DPTR(t->data);
    void *args[] = {&dy, &dt, &bn, &dim, &flip, &freq_shift};
    sdiff__cuda_launch(cb, SDIFF__CP_ELEMENTWISE, 0, "timestep_embedding", sdiff__cuda_grid(cb, bn * dim), 1, 256, args);
}

/* >>cuda:attn ==============================================================
   Attention. sdiff__cuda_attention validates and routes:
     1. the tensor-core flash kernel: D in sdiff__cuda_flash_dims, non-causal,
        16-byte aligned bases, strides multiples of 8, B*H <= 65535; on
        Hopper at D = 40, 64, 80 the TMA one (attn_kernel_sm90.cu), else the
        mma.sync one (attn_kernel.cu);
     2. else, non-causal: the cuBLASLt math path (sdiff__cuda_attention_gemm),
        any head dim, any alignment cuBLASLt takes;
     3. else (causal, or no cuBLASLt algorithm for the shape): the exact
        fallback kernel, D <= 512 and B*H <= 65535.
   ========================================================================= */
SDIFF__PRIVATE void sdiff__cuda_attention_fallback(sdiff__cuda *cb, sdiff__tensor *o, const sdiff__tensor *q,
                                                   const sdiff__tensor *k, const sdiff__tensor *v, int heads,
                                                   bool causal) {
    sdiff__backend *be = &cb->be;
    int64_t bn = q->ne[0], lq = q->ne[1], lk = k->ne[1], qs = q->row_stride, ks = k->row_stride, vs = v->row_stride;
    int d = (int)(q->ne[2] / heads), variant = -1;
    for (int i = 0; i < SDIFF__CUDA_MAX_VARIANTS && variant < 0; i++)
        if (d <= sdiff__cuda_attn_dmax[i]) variant = i;
    if (variant < 0) {
        sdiff__be_fail(be, SDIFF_ERR_UNSUPPORTED, "attention: head dim %d is above the %d the CUDA backend supports", d,
                       sdiff__cuda_attn_dmax[SDIFF__CUDA_MAX_VARIANTS - 1]);
        return;
    }
    if (bn * heads > 65535) {
        sdiff__be_fail(be, SDIFF_ERR_UNSUPPORTED, "attention: %lld batch x heads is above 65535", (long long)(bn * heads));
        return;
    }
    float scale = 1.0f / sqrtf((float)d);
    int c = causal, vec = d % 8 == 0 && ks % 8 == 0 && sdiff__cuda_al16(k->data);
    CUdeviceptr d_o = SDIFF__DPTR(o->data), dq = SDIFF__DPTR(q->data), dk = SDIFF__DPTR(k->data), dv = SDIFF__DPTR(v->data);
    void *args[] = {&d_o, &dq, &dk, &dv, &lq, &lk, &heads, &d, &qs, &ks, &vs, &scale, &c, &vec};
    sdiff__cuda_launch(cb, SDIFF__CP_ATTN, variant, "attention_fallback", (unsigned)((lq + 3) / 4), (unsigned)(bn * heads),
                       128, args);
}
/* The math path, as PyTorch's: per (batch item, head) S = Q K^T / sqrt(D)
   in fp32 into scratch, P = softmax(S) per row as fp16 (softmax_rows), then
   O = P V written straight into o. For head dims without a tensor-core
   kernel (the VAE's one head of 512) and non-causal attention; causal
   attention stays on the fallback kernel.
   In cuBLASLt's column-major terms (a row-major [R, C] matrix with row
   stride ld is a column-major [C, R] one with the same ld):
     S^T[Lk, rows] = (K^T)^T . Q^T: A = K^T stored [D, Lk] ld ks, TRANSA = T;
       B = Q^T stored [D, rows] ld qs, TRANSB = N; D = S^T [Lk, rows] ld Lk,
       fp32, alpha = 1/sqrt(D).
     O^T[D, rows] = V^T . P^T: A = V^T stored [D, Lk] ld vs, TRANSA = N;
       B = P^T stored [Lk, rows] ld Lk, TRANSB = N; D = O^T [D, rows] ld os,
       fp16 (o's own rows: its head's D columns, the others untouched).
   The GEMMs are strided-batched over the heads (head h is D columns further
   on in q, k, v and o), one call per batch item; with one head, over the
   batch items instead (Lq*qs, Lk*ks, ... apart), one call for all. On
   Hopper, where the TMA takes the operands (16-byte aligned, strides and D
   and Lk in 8s), the same products run on sdiff's GEMM (sdiff__cuda_gemm_tma,
   one launch per batch entry) instead, S = Q . K^T straight from q and k and
   O = P . (V^T)^T from a V^T the transpose kernel writes into scratch (the
   kernel's operands are K-major). S, P (and V^T) live in the backend's
   scratch (shared with im2col, grown only outside graph capture); when they
   would pass SDIFF_CUDA_ATTN_MAX the batch is split into groups and then the
   query rows into chunks. Returns false only when cuBLASLt has no algorithm
   for a shape (the caller falls back; what was written to o is rewritten
   then); true when done or the backend failed. */
SDIFF__PRIVATE bool sdiff__cuda_attention_gemm(sdiff__cuda *cb, sdiff__tensor *o, const sdiff__tensor *q,
                                               const sdiff__tensor *k, const sdiff__tensor *v, int heads) {
    const char *op = "attention";
    sdiff__backend *be = &cb->be;
    const int64_t bn = q->ne[0], lq = q->ne[1], lk = k->ne[1], d = q->ne[2] / heads;
    const int64_t qs = q->row_stride, ks = k->row_stride, vs = v->row_stride, os = o->row_stride;
    /* the batch of each GEMM call: heads (or batch items, for one head) */
    const int64_t nbat = heads > 1 ? heads : bn, nouter = heads > 1 ? bn : 1;
    const int64_t qbs = heads > 1 ? d : lq * qs, kbs = heads > 1 ? d : lk * ks, vbs = heads > 1 ? d : lk * vs,
                  obs = heads > 1 ? d : lq * os;
    /* group size g (batch entries per call) and rows per chunk */
    const int64_t cap = (int64_t)SDIFF_CUDA_ATTN_MAX, row_bytes = lk * 6; /* fp32 S + fp16 P */
    int64_t g = nbat, rows = lq;
    if (g * lq * row_bytes > cap) {
        if (lq * row_bytes <= cap) g = cap / (lq * row_bytes);
        else {
            g = 1;
            rows = cap / row_bytes;
            rows = rows >= 64 ? rows / 64 * 64 : SDIFF__MAX(rows, (int64_t)1);
        }
    }
    const bool ours = cb->tma && d % 8 == 0 && lk % 8 == 0 && qs % 8 == 0 && ks % 8 == 0 && vs % 8 == 0 &&
                      sdiff__cuda_al16(q->data) && sdiff__cuda_al16(k->data) && sdiff__cuda_al16(v->data) &&
                      lq < INT32_MAX && lk < INT32_MAX / 2;
    const int64_t p_off = (g * rows * lk * 4 + 255) / 256 * 256, vt_off = (p_off + g * rows * lk * 2 + 255) / 256 * 256;
    if (!sdiff__cuda_reserve(cb, &cb->scratch, &cb->scratch_size, (size_t)(ours ? vt_off + g * d * lk * 2 : vt_off), op))
        return true;
    const CUdeviceptr sbuf = cb->scratch, pbuf = cb->scratch + (CUdeviceptr)p_off, vtbuf = cb->scratch + (CUdeviceptr)vt_off;
    const float scale = 1.0f / sqrtf((float)d);
    int vec = lk % 4 == 0;   /* scratch is 256-byte aligned, rows lk apart */
    int64_t lkn = lk;
    const char *qd = (const char *)q->data, *kd = (const char *)k->data, *vd = (const char *)v->data;
    char *od = (char *)o->data;
    for (int64_t ob = 0; ob < nouter; ob++)
        for (int64_t g0 = 0; g0 < nbat; g0 += g)
            for (int64_t r0 = 0; r0 < lq; r0 += rows) {
                if (be->status != SDIFF_OK) return true;
                const int64_t gc = SDIFF__MIN(g, nbat - g0), rc = SDIFF__MIN(rows, lq - r0);
                const bool batched = gc > 1;
                const void *qp = qd + 2 * (ob * lq * qs + g0 * qbs + r0 * qs);
                const void *kp = kd + 2 * (ob * lk * ks + g0 * kbs), *vp = vd + 2 * (ob * lk * vs + g0 * vbs);
                void *opp = od + 2 * (ob * lq * os + g0 * obs + r0 * os);
                CUdeviceptr ds = sbuf, dp = pbuf;
                void *sm_args[] = {&dp, &ds, &lkn, &vec};
                if (ours) {
                    if (r0 == 0) { /* this group's V^T, [gc][D][Lk] */
                        CUdeviceptr dvt = vtbuf, dv = SDIFF__DPTR(vp);
                        int64_t dd = d;
                        void *args[] = {&dvt, &dv, &lkn, &dd, (void *)&vs, (void *)&vbs};
                        const unsigned grid[3] = {(unsigned)((d + 31) / 32), (unsigned)((lk + 31) / 32), (unsigned)gc},
                                       blk[3] = {32, 8, 1};
                        sdiff__cuda_launch_ex(cb, SDIFF__CP_ELEMENTWISE, 0, "transpose", grid, blk, 0, args);
                    }
                    bool ran = true;
                    for (int64_t e = 0; e < gc && ran; e++)
                        ran = sdiff__cuda_gemm_tma(cb, (void *)(uintptr_t)(sbuf + (CUdeviceptr)(e * rc * lk * 4)), lk,
                                                   (const char *)qp + 2 * e * qbs, qs, (const char *)kp + 2 * e * kbs, ks,
                                                   NULL, NULL, 0, rc, lk, d, 0, true, scale);
                    sdiff__cuda_launch(cb, SDIFF__CP_NORM, 0, "softmax_rows", (unsigned)(gc * rc), 1, 256, sm_args);
                    for (int64_t e = 0; e < gc && ran; e++)
                        ran = sdiff__cuda_gemm_tma(cb, (char *)opp + 2 * e * obs, os,
                                                   (const void *)(uintptr_t)(pbuf + (CUdeviceptr)(e * rc * lk * 2)), lk,
                                                   (const void *)(uintptr_t)(vtbuf + (CUdeviceptr)(e * d * lk * 2)), lk,
                                                   NULL, NULL, 0, rc, d, lk, 0, false, 1.0f);
                    if (!ran) {
                        sdiff__be_fail(be, SDIFF_ERR_BACKEND, "attention: the GEMM kernel declined Lq %lld Lk %lld D %lld",
                                       (long long)lq, (long long)lk, (long long)d);
                        return true;
                    }
                    continue;
                }
                sdiff__cuda_bgemm_key k1, k2;
                memset(&k1, 0, sizeof k1);
                k1.m = lk; k1.n = rc; k1.k = d; k1.lda = ks; k1.ldb = qs; k1.ldc = lk;
                k1.sa = batched ? kbs : 0; k1.sb = batched ? qbs : 0; k1.sc = batched ? rc * lk : 0;
                k1.transa = SDIFF__CUBLAS_OP_T; k1.transb = SDIFF__CUBLAS_OP_N; k1.ctype = SDIFF__CUDA_R_32F;
                k1.batch = (int32_t)gc;
                memset(&k2, 0, sizeof k2);
                k2.m = d; k2.n = rc; k2.k = lk; k2.lda = vs; k2.ldb = lk; k2.ldc = os;
                k2.sa = batched ? vbs : 0; k2.sb = batched ? rc * lk : 0; k2.sc = batched ? obs : 0;
                k2.transa = SDIFF__CUBLAS_OP_N; k2.transb = SDIFF__CUBLAS_OP_N; k2.ctype = SDIFF__CUDA_R_16F;
                k2.batch = (int32_t)gc;
                int r = sdiff__cuda_bgemm(cb, op, k1, scale, kp, qp, (void *)(uintptr_t)sbuf);
                if (r <= 0) return r < 0;
                sdiff__cuda_launch(cb, SDIFF__CP_NORM, 0, "softmax_rows", (unsigned)(gc * rc), 1, 256, sm_args);
                r = sdiff__cuda_bgemm(cb, op, k2, 1.0f, vp, (const void *)(uintptr_t)pbuf, opp);
                if (r <= 0) return r < 0;
            }
    return true;
}
/* The TMA attention's split tails (attn_kernel_sm90.cu): one counter per tail tile, which must be
   zero when a launch starts (the kernel leaves them so; zeroed here when allocated), so they cannot
   live in the shared scratch that im2col and the attention math path overwrite; and the partials,
   beside them. Both grow only outside graph capture, as the scratch does. */
SDIFF__PRIVATE bool sdiff__cuda_attn_split_buffers(sdiff__cuda *cb, size_t part_bytes, size_t counters) {
    if (!sdiff__cuda_reserve(cb, &cb->attn_part, &cb->attn_part_size, part_bytes, "attention")) return false;
    if (cb->attn_count_size >= counters * 4) return true;
    if (!sdiff__cuda_reserve(cb, &cb->attn_count, &cb->attn_count_size, counters * 4, "attention")) return false;
    void *zeros = sdiff__calloc(counters, 4);
    const CUresult r = zeros ? sdiff__g_cu.cuMemcpyHtoD(cb->attn_count, zeros, counters * 4) : SDIFF__CUDA_ERROR_OUT_OF_MEMORY;
    sdiff__free(zeros);
    if (r != SDIFF__CUDA_SUCCESS) {
        sdiff__be_fail(&cb->be, SDIFF_ERR_BACKEND, "attention: could not clear the split counters: %s", sdiff__cu_errstr(r));
        return false;
    }
    return true;
}
SDIFF__PRIVATE void sdiff__cuda_attention(sdiff__backend *be, sdiff__tensor *o, const sdiff__tensor *q,
                                          const sdiff__tensor *k, const sdiff__tensor *v, int heads, bool causal) {
    if (!sdiff__cuda_enter(be) || !sdiff__check_attention(be, o, q, k, v, heads, SDIFF__F16)) return;
    sdiff__cuda *cb = SDIFF__CUDA(be);
    const int d = (int)(q->ne[2] / heads);
    int variant = -1;
    for (int i = 0; i < SDIFF__CUDA_MAX_VARIANTS; i++)
        if (sdiff__cuda_flash_dims[i] == d) variant = i;
    /* the tensor-core kernel copies 16-byte chunks: it needs aligned bases
       and strides in multiples of 8 halves (the packed q/k/v views of SD's
       projections are) */
    bool flash = variant >= 0 && !causal && sdiff__cuda_al16(q->data) && sdiff__cuda_al16(k->data) &&
                 sdiff__cuda_al16(v->data) && sdiff__cuda_al16(o->data) && q->row_stride % 8 == 0 &&
                 k->row_stride % 8 == 0 && v->row_stride % 8 == 0 && q->ne[0] * heads <= 65535;
    if (!flash) {
        /* the cuBLASLt math path for everything non-causal the flash kernel
           does not take (cuBLASLt takes sizes up to int32 per matrix) */
        if (!causal && q->ne[1] <= INT32_MAX && k->ne[1] <= INT32_MAX &&
            sdiff__cuda_attention_gemm(cb, o, q, k, v, heads))
            return;
        if (be->status != SDIFF_OK) return;
        sdiff__cuda_attention_fallback(cb, o, q, k, v, heads, causal);
        return;
    }
    int B = (int)q->ne[0], lq = (int)q->ne[1], lk = (int)k->ne[1];
    long long qs = q->row_stride, ks = k->row_stride, vs = v->row_stride, os = o->row_stride;
    float scale_log2e = 1.4426950408889634f / sqrtf((float)d);
    unsigned grid[3], block[3], smem;
    CUdeviceptr dq = SDIFF__DPTR(q->data), dk = SDIFF__DPTR(k->data), dv = SDIFF__DPTR(v->data), d_o = SDIFF__DPTR(o->data);
    int tma_variant = -1;
    for (int i = 0; i < SDIFF__CUDA_TMA_VARIANTS; i++)
        if (cb->tma && sdiff__cuda_tma_dims[i] == d) tma_variant = i;
    if (tma_variant >= 0) {
        /* Hopper: the TMA + wgmma kernel (tools/kernels/NOTES.md: 1.5-1.8x the mma.sync one). The
           tensor maps go into the launch by value, so a captured graph keeps its own copies. */
        unsigned char buf[3 * 128 + 64], *maps = buf + ((64 - (uintptr_t)buf % 64) % 64); /* 64-byte aligned */
        void *mp[3] = {maps, maps + 128, maps + 256};
        unsigned tile[2];
        int split[3];
        const long long part_floats =
            sdiff__cu_attention_sm90_launch_dims(d, lq, lk, B, heads, cb->n_sm, grid, block, &smem, tile, split);
        CUdeviceptr dpart = 0, dcount = 0;
        if (part_floats && !sdiff__cuda_attn_split_buffers(cb, (size_t)part_floats * 4, (size_t)(grid[0] - split[1]) / split[2]))
            return;
        if (part_floats) dpart = cb->attn_part, dcount = cb->attn_count;
        const int r = sdiff__cu_attention_sm90_tmaps(sdiff__g_cu.cuTensorMapEncodeTiled, mp, q->data, k->data, v->data, d,
                                                     heads, B, lq, lk, qs, ks, vs, tile[0], tile[1]);
        if (r == 0) {
            void *args[] = {mp[0], mp[1], mp[2], &d_o, &heads, &lq, &lk, &os, &scale_log2e, &split[0], &split[1], &split[2],
                            &dpart, &dcount};
            sdiff__cuda_launch_ex(cb, SDIFF__CP_FLASH_TMA, tma_variant + (split[2] > 1 ? SDIFF__CUDA_TMA_VARIANTS : 0),
                                  "sdiff_attention_fwd_tma", grid, block, smem, args);
            return;
        }
        /* a view the TMA cannot describe: the mma.sync kernel takes it (said, since it is slower) */
        sdiff__log(be->log, SDIFF_LOG_DEBUG, "cuda", "attention: cuTensorMapEncodeTiled: %s (D %d, strides %lld %lld %lld); "
                   "on the mma.sync kernel", sdiff__cu_errstr((CUresult)r), d, qs, ks, vs);
    }
    sdiff__cu_attention_launch_dims(d, lq, B, heads, grid, block, &smem);
    void *args[] = {&dq, &dk, &dv, &d_o, &B, &heads, &lq, &lk, &qs, &ks, &vs, &os, &scale_log2e};
    sdiff__cuda_launch_ex(cb, SDIFF__CP_FLASH, variant, "sdiff_attention_fwd", grid, block, smem, args);
}

/* >>cuda:graph =============================================================
   Graphs: the ops between graph_begin and graph_end are captured from the
   stream (relaxed mode, so host-side work such as cuBLASLt's descriptor
   setup may run meanwhile) and instantiated; graph_launch replays them.
   While capturing, ops neither allocate nor synchronise: scratch that would
   have to grow fails the backend instead (see sdiff__cuda_reserve).
   ========================================================================= */
SDIFF__PRIVATE bool sdiff__cuda_graph_begin(sdiff__backend *be) {
    sdiff__cuda *cb = SDIFF__CUDA(be);
    if (!sdiff__cuda_enter(be) || cb->capturing) return false;
    CUresult r = sdiff__g_cu.cuStreamBeginCapture(cb->stream, SDIFF__CU_STREAM_CAPTURE_MODE_RELAXED);
    if (r != SDIFF__CUDA_SUCCESS) {
        sdiff__log(be->log, SDIFF_LOG_DEBUG, "cuda", "graph capture unavailable (%s); running eagerly", sdiff__cu_errstr(r));
        return false;
    }
    cb->capturing = true;
    return true;
}
SDIFF__PRIVATE void *sdiff__cuda_graph_end(sdiff__backend *be) {
    sdiff__cuda *cb = SDIFF__CUDA(be);
    if (!cb->capturing) {
        sdiff__be_fail(be, SDIFF_ERR_BACKEND, "cuda: graph_end without graph_begin");
        return NULL;
    }
    cb->capturing = false;
    sdiff__g_cu.cuCtxSetCurrent(cb->ctx);
    CUgraph g = NULL;
    CUgraphExec exec = NULL;
    if (!SDIFF__CU(be, cuStreamEndCapture(cb->stream, &g))) return NULL;
    if (be->status == SDIFF_OK) SDIFF__CU(be, cuGraphInstantiateWithFlags(&exec, g, 0));
    sdiff__g_cu.cuGraphDestroy(g);
    if (be->status != SDIFF_OK) {
        if (exec) sdiff__g_cu.cuGraphExecDestroy(exec);
        return NULL;
    }
    return (void *)exec;
}
SDIFF__PRIVATE void sdiff__cuda_graph_launch(sdiff__backend *be, void *graph) {
    if (!sdiff__cuda_enter(be)) return;
    if (!graph) { sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "cuda: graph_launch of a NULL graph"); return; }
    SDIFF__CU(be, cuGraphLaunch((CUgraphExec)graph, SDIFF__CUDA(be)->stream));
}
SDIFF__PRIVATE void sdiff__cuda_graph_free(sdiff__backend *be, void *graph) {
    if (!graph) return;
    sdiff__g_cu.cuCtxSetCurrent(SDIFF__CUDA(be)->ctx);
    sdiff__g_cu.cuGraphExecDestroy((CUgraphExec)graph);
}

/* mark and wait_mark: an event recorded on the stream, and the host waiting for it. */
SDIFF__PRIVATE void sdiff__cuda_mark(sdiff__backend *be, int k) {
    sdiff__cuda *cb = SDIFF__CUDA(be);
    if (!sdiff__cuda_enter(be) || !sdiff__cuda_not_capturing(be, "mark")) return;
    if (k < 0 || k > 1) { sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "cuda: mark %d (0 or 1)", k); return; }
    if (!cb->marks[k] && !SDIFF__CU(be, cuEventCreate(&cb->marks[k], SDIFF__CU_EVENT_DISABLE_TIMING))) return;
    SDIFF__CU(be, cuEventRecord(cb->marks[k], cb->stream));
}
SDIFF__PRIVATE void sdiff__cuda_wait_mark(sdiff__backend *be, int k) {
    sdiff__cuda *cb = SDIFF__CUDA(be);
    if (!sdiff__cuda_enter(be) || !sdiff__cuda_not_capturing(be, "wait_mark")) return;
    if (k < 0 || k > 1 || !cb->marks[k]) { sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "cuda: wait for mark %d, never made", k); return; }
    SDIFF__CU(be, cuEventSynchronize(cb->marks[k]));
}

/* >>cuda:create ============================================================
   Creation (returns NULL with the reason in sdiff_last_error), destruction,
   and the registration with sdiff.h.
   ========================================================================= */
SDIFF__PRIVATE void sdiff__cuda_destroy(sdiff__backend *be) {
    if (!be) return;
    sdiff__cuda *cb = SDIFF__CUDA(be);
    sdiff__cuda_libs *L = &sdiff__g_cu;
    if (cb->ctx) {
        L->cuCtxSetCurrent(cb->ctx);
        if (cb->capturing) {
            CUgraph g = NULL;
            if (L->cuStreamEndCapture(cb->stream, &g) == 0 && g) L->cuGraphDestroy(g);
        }
        if (cb->stream) L->cuStreamSynchronize(cb->stream);
        for (int i = 0; i < 2; i++)
            if (cb->marks[i]) L->cuEventDestroy(cb->marks[i]);
        for (int i = 0; i < cb->n_plans; i++) sdiff__cuda_plan_destroy(&cb->plans[i]);
        for (int i = 0; i < cb->n_bplans; i++) sdiff__cuda_bplan_destroy(&cb->bplans[i]);
        if (cb->lt) L->cublasLtDestroy(cb->lt);
        sdiff__cuda_mem_free(cb, cb->lt_ws);
        sdiff__cuda_mem_free(cb, cb->stage);
        sdiff__cuda_mem_free(cb, cb->scratch);
        sdiff__cuda_mem_free(cb, cb->ids);
        sdiff__cuda_mem_free(cb, cb->gn);
        sdiff__cuda_mem_free(cb, cb->attn_part);
        sdiff__cuda_mem_free(cb, cb->attn_count);
        while (cb->ranges) sdiff__cuda_range_free(be, (void *)(uintptr_t)cb->ranges->base); /* an arena left behind */
        for (int p = 0; p < SDIFF__CP_COUNT; p++)
            for (int v = 0; v < SDIFF__CUDA_MAX_VARIANTS; v++)
                if (cb->modules[p][v]) L->cuModuleUnload(cb->modules[p][v]);
        if (cb->stream) L->cuStreamDestroy(cb->stream);
        L->cuDevicePrimaryCtxRelease(cb->dev);
    }
    sdiff__free(cb->plans);
    sdiff__free(cb->bplans);
    sdiff__free(cb);
}

/* An A/B switch of the environment (SDIFF_CUDA_WGMMA, _TMA, _CLUSTERS, _PDL, _VMM) set to "0". */
SDIFF__PRIVATE bool sdiff__cuda_env_off(const char *name) {
    const char *v = getenv(name);
    return v && !strcmp(v, "0");
}
/* The architecture to compile for: sm_90a on 9.0 (wgmma/TMA available),
   sm_XY otherwise; PTX for NVRTC's newest when the GPU is newer than that. */
SDIFF__PRIVATE bool sdiff__cuda_pick_arch(sdiff__cuda *cb) {
    sdiff__cuda_libs *L = &sdiff__g_cu;
    int cc = cb->cc_major * 10 + cb->cc_minor, n = 0, archs[128], best = 0;
    bool listed = false;
    if (L->nvrtcGetNumSupportedArchs(&n) == 0 && n > 0 && n <= 128 && L->nvrtcGetSupportedArchs(archs) == 0) {
        for (int i = 0; i < n; i++) {
            if (archs[i] == cc) listed = true;
            if (archs[i] <= cc && archs[i] > best) best = archs[i];
        }
    } else {
        listed = true; /* cannot ask: try the GPU's own */
    }
    if (listed) {
        snprintf(cb->arch, sizeof cb->arch, cc == 90 ? "sm_90a" : "sm_%d", cc);
        cb->wgmma = cc == 90 && !sdiff__cuda_env_off("SDIFF_CUDA_WGMMA");
        cb->tma = cc == 90 && L->cuTensorMapEncodeTiled && !sdiff__cuda_env_off("SDIFF_CUDA_TMA");
        cb->clusters = cc >= 90 && !sdiff__cuda_env_off("SDIFF_CUDA_CLUSTERS");
        cb->pdl = cc >= 90 && !sdiff__cuda_env_off("SDIFF_CUDA_PDL");
        return true;
    }
    if (!best) {
        sdiff__err(SDIFF_ERR_UNSUPPORTED, "cuda: NVRTC %d.%d cannot compile for compute capability %d.%d",
                   L->nvrtc_major, L->nvrtc_minor, cb->cc_major, cb->cc_minor);
        return false;
    }
    snprintf(cb->arch, sizeof cb->arch, "compute_%d", best);
    cb->code_is_ptx = true;
    cb->clusters = best >= 90 && !sdiff__cuda_env_off("SDIFF_CUDA_CLUSTERS");
    cb->pdl = best >= 90 && !sdiff__cuda_env_off("SDIFF_CUDA_PDL");
    return true;
}

SDIFF__PRIVATE sdiff__backend *sdiff__cuda_backend_create(int device, const sdiff__logger *log) {
    sdiff__cuda_libs *L = &sdiff__g_cu;
    if (!sdiff__cuda_load_driver()) {
        sdiff__err(SDIFF_ERR_BACKEND, "%s: no NVIDIA driver", L->cu_why);
        return NULL;
    }
    CUresult r = L->cuInit(0);
    if (r != SDIFF__CUDA_SUCCESS) {
        sdiff__err(SDIFF_ERR_BACKEND, "%s (cuInit: %s)", r == 100 ? "no CUDA device" : "the CUDA driver failed to start",
                   sdiff__cu_errstr(r));
        return NULL;
    }
    int count = 0;
    if ((r = L->cuDeviceGetCount(&count)) != SDIFF__CUDA_SUCCESS || count < 1) {
        sdiff__err(SDIFF_ERR_BACKEND, "no CUDA device%s%s", r ? ": " : "", r ? sdiff__cu_errstr(r) : "");
        return NULL;
    }
    if (device < 0 || device >= count) {
        sdiff__err(SDIFF_ERR_INVALID_ARG, "CUDA device %d requested, but %d found", device, count);
        return NULL;
    }
    if (!sdiff__cuda_load_nvrtc()) {
        sdiff__err(SDIFF_ERR_BACKEND, "NVRTC: %s (the CUDA toolkit's runtime compiler is needed)", L->nvrtc_why);
        return NULL;
    }
    if (!sdiff__cuda_load_cublaslt()) {
        sdiff__err(SDIFF_ERR_BACKEND, "cuBLASLt: %s", L->lt_why);
        return NULL;
    }
    sdiff__cuda *cb = (sdiff__cuda *)sdiff__calloc(1, sizeof *cb);
    if (!cb) { sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory"); return NULL; }
    sdiff__backend *be = &cb->be;
    be->name = "cuda";
    be->status = SDIFF_OK;
    be->act_dtype = SDIFF__F16;
    be->weight_dtype = SDIFF__F16;
    be->log = log;
    be->destroy = sdiff__cuda_destroy;
    be->alloc = sdiff__cuda_alloc;
    be->free = sdiff__cuda_free;
    be->range_reserve = sdiff__cuda_range_reserve;
    be->range_grow = sdiff__cuda_range_grow;
    be->range_free = sdiff__cuda_range_free;
    be->upload = sdiff__cuda_upload;
    be->upload_conv = sdiff__cuda_upload_conv;
    be->download = sdiff__cuda_download;
    be->download_image = sdiff__cuda_download_image;
    be->linear = sdiff__cuda_linear;
    be->conv2d = sdiff__cuda_conv2d;
    be->group_norm = sdiff__cuda_group_norm;
    be->upsample_conv2d = sdiff__cuda_upsample_conv2d;
    be->layer_norm = sdiff__cuda_layer_norm;
    be->attention = sdiff__cuda_attention;
    be->add = sdiff__cuda_add;
    be->activate = sdiff__cuda_activate;
    be->lincomb = sdiff__cuda_lincomb;
    be->upsample = sdiff__cuda_upsample;
    be->concat = sdiff__cuda_concat;
    be->embed = sdiff__cuda_embed;
    be->timestep_embedding = sdiff__cuda_timestep_embedding;
    be->graph_begin = sdiff__cuda_graph_begin;
    be->graph_end = sdiff__cuda_graph_end;
    be->graph_launch = sdiff__cuda_graph_launch;
    be->graph_free = sdiff__cuda_graph_free;
    be->mark = sdiff__cuda_mark;
    be->wait_mark = sdiff__cuda_wait_mark;
    size_t total_mem = 0;
    bool ok = SDIFF__CU(be, cuDeviceGet(&cb->dev, device)) &&
              SDIFF__CU(be, cuDeviceGetAttribute(&cb->cc_major, SDIFF__CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, cb->dev)) &&
              SDIFF__CU(be, cuDeviceGetAttribute(&cb->cc_minor, SDIFF__CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, cb->dev)) &&
              SDIFF__CU(be, cuDeviceGetAttribute(&cb->n_sm, SDIFF__CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, cb->dev)) &&
              SDIFF__CU(be, cuDeviceGetAttribute(&cb->smem_optin, SDIFF__CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                                                 cb->dev)) &&
              SDIFF__CU(be, cuDeviceGetName(cb->dev_name, (int)sizeof cb->dev_name, cb->dev)) &&
              SDIFF__CU(be, cuDeviceTotalMem(&total_mem, cb->dev));
    if (ok && cb->cc_major < 7) {
        sdiff__be_fail(be, SDIFF_ERR_UNSUPPORTED, "cuda: %s has compute capability %d.%d; sdiff needs 7.0 or newer",
                       cb->dev_name, cb->cc_major, cb->cc_minor);
        ok = false;
    }
    if (ok && !sdiff__cuda_pick_arch(cb)) { be->status = SDIFF_ERR_UNSUPPORTED; ok = false; }
    cb->vmm = !sdiff__cuda_env_off("SDIFF_CUDA_VMM");
    int dv = 0;
    L->cuDriverGetVersion(&dv);
    if (dv < 12030) cb->pdl = false; /* graphs capture programmatic launches from CUDA 12.3 on */
    if (ok) ok = SDIFF__CU(be, cuDevicePrimaryCtxRetain(&cb->ctx, cb->dev));
    if (!ok) cb->ctx = NULL; /* nothing to release */
    ok = ok && SDIFF__CU(be, cuCtxSetCurrent(cb->ctx)) &&
         SDIFF__CU(be, cuStreamCreate(&cb->stream, SDIFF__CU_STREAM_DEFAULT)) &&
         SDIFF__LT(be, cublasLtCreate(&cb->lt)) &&
         SDIFF__CUDA_CHECK_GEN(be, sdiff__cuda_mem_alloc(cb, &cb->lt_ws, SDIFF__CUDA_LT_WS_BYTES), (const char *)NULL) &&
         SDIFF__CUDA_CHECK_GEN(be, sdiff__cuda_mem_alloc(cb, &cb->stage, SDIFF__CUDA_STAGE_BYTES), (const char *)NULL);
    if (!ok) {
        /* the message is already in sdiff_last_error (be_fail or sdiff__err
           wrote it); destroy leaves it alone */
        sdiff__cuda_destroy(be);
        return NULL;
    }
    sdiff__log(log, SDIFF_LOG_INFO, "cuda", "%s (compute %d.%d, %d SMs, %zu MiB), driver %d.%d, NVRTC %d.%d, cuBLASLt %zu, "
               "kernels for %s", cb->dev_name, cb->cc_major, cb->cc_minor, cb->n_sm, total_mem >> 20, dv / 1000,
               dv % 1000 / 10, L->nvrtc_major, L->nvrtc_minor, L->cublasLtGetVersion(), cb->arch);
    return be;
}

/* sdiff.h calls sdiff__g_cuda_backend_create when it is set: set it before
   main, so including this file is all it takes. */
__attribute__((constructor)) static void sdiff__cuda_register(void) {
    sdiff__g_cuda_backend_create = sdiff__cuda_backend_create;
}

#endif /* SDIFF_CUDA_IMPLEMENTATION_DONE */
#endif /* SDIFF_IMPLEMENTATION */

/*
MIT License

Copyright (c) 2026 the sdiff authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
*/
