/* lt_census.c - which cuBLASLt algorithms does compute-sanitizer racecheck flag, and what do they
   cost? Replays every GEMM shape of a generation (the "gemm plan:" and "batched gemm plan:" lines
   that `sdiff -v` logs when the CUDA backend plans a cuBLASLt call), asks cuBLASLt's heuristic for
   up to 16 algorithms per shape (the library takes the first) and either times each one (mode
   time: median of 21 samples of 5 back-to-back calls) or runs each once between marker lines
   (mode race, under compute-sanitizer --tool racecheck: a hazard report after "== shape ..." belongs
   to that algorithm). The finding it was written for is in tools/PERF.md (S12).
   Build and run on a GPU machine (links the CUDA toolkit's cuBLASLt and runtime directly):
     gcc -O2 -I/usr/local/cuda/include tools/lt_census.c -o build/lt_census -L/usr/local/cuda/lib64 -lcublasLt -lcudart
     build/sdiff -v -m MODEL -p "a cat" -W 256 -H 256 --steps 4 --backend cuda -o x.png 2>&1 | grep "gemm plan:" > shapes.txt
     build/lt_census shapes.txt time [max_algorithms]
     compute-sanitizer --tool racecheck build/lt_census shapes.txt race 8 */
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(x) do { cudaError_t e_ = (x); if (e_) { printf("cuda %s line %d\n", cudaGetErrorString(e_), __LINE__); exit(1); } } while (0)
#define LK(x) do { cublasStatus_t s_ = (x); if (s_) { printf("lt %d line %d\n", (int)s_, __LINE__); exit(1); } } while (0)

static int cmpf(const void *a, const void *b) { float x = *(const float *)a, y = *(const float *)b; return (x > y) - (x < y); }

static void *dev_fill(size_t bytes, unsigned seed) {
    void *d; CK(cudaMalloc(&d, bytes + 256));
    uint16_t *h = (uint16_t *)malloc(bytes);
    for (size_t i = 0; i < bytes / 2; i++) { seed = seed * 1664525u + 1013904223u; h[i] = (uint16_t)(0x3000 + ((seed >> 16) & 0x0fff)) ^ (uint16_t)((seed >> 31) << 15); }
    CK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice)); free(h);
    return d;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: lt_census shapes.txt time|race [max_algorithms]\n"); return 2; }
    const int race = !strcmp(argv[2], "race"), max_algos = argc > 3 ? atoi(argv[3]) : 16;
    FILE *f = fopen(argv[1], "r");
    if (!f) return 2;
    cublasLtHandle_t lt; LK(cublasLtCreate(&lt));
    size_t ws_bytes = 32u << 20; void *ws; CK(cudaMalloc(&ws, ws_bytes));
    cudaStream_t st; CK(cudaStreamCreate(&st));
    cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    char line[512];
    int shape = 0;
    while (fgets(line, sizeof line, f)) {
        long long m, n, k, lda, ldb = 0, ldc = 0, sa = 0, sb = 0, sc = 0; int epi = 0, beta = 0, ta = 0, tb = 0, ctype = CUDA_R_16F, batch = 1, al[4];
        const char *bp = strstr(line, "batched gemm plan: "), *lp = strstr(line, "gemm plan: ");
        int bat = bp != NULL;
        if (bat) {
            if (sscanf(bp + 19, "%lld %lld %lld %lld %lld %lld %lld %lld %lld %d %d %d %d %d %d %d %d", &m, &n, &k, &lda, &ldb, &ldc, &sa, &sb, &sc, &ta, &tb, &ctype, &batch, &al[0], &al[1], &al[2], &al[3]) != 17) continue;
        } else if (lp) {
            if (sscanf(lp + 11, "%lld %lld %lld %lld %d %d %d %d %d %d", &m, &n, &k, &lda, &epi, &beta, &al[0], &al[1], &al[2], &al[3]) != 10) continue;
        } else continue;
        cublasLtMatmulDesc_t desc; cublasLtMatrixLayout_t la, lb, lc;
        LK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        size_t abytes, bbytes, cbytes;
        if (!bat) {
            int32_t opt = CUBLAS_OP_T, opn = CUBLAS_OP_N, bt = CUDA_R_16F; uint32_t e = (uint32_t)epi;
            LK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opt, sizeof opt));
            LK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opn, sizeof opn));
            LK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e));
            if (epi == CUBLASLT_EPILOGUE_BIAS) LK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
            LK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16F, k, n, k));
            LK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16F, k, m, lda));
            LK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16F, n, m, n));
            abytes = (size_t)n * k * 2; bbytes = (size_t)m * lda * 2; cbytes = (size_t)m * n * 2;
        } else {
            int32_t a32 = ta, b32 = tb;
            LK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &a32, sizeof a32));
            LK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &b32, sizeof b32));
            int at = ta == CUBLAS_OP_T, btr = tb == CUBLAS_OP_T;
            LK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16F, at ? k : m, at ? m : k, lda));
            LK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16F, btr ? n : k, btr ? k : n, ldb));
            LK(cublasLtMatrixLayoutCreate(&lc, (cudaDataType_t)ctype, m, n, ldc));
            int32_t b32c = batch;
            if (batch > 1) {
                LK(cublasLtMatrixLayoutSetAttribute(la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &b32c, sizeof b32c));
                LK(cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &b32c, sizeof b32c));
                LK(cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &b32c, sizeof b32c));
                LK(cublasLtMatrixLayoutSetAttribute(la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sa, sizeof sa));
                LK(cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sb, sizeof sb));
                LK(cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sc, sizeof sc));
            }
            abytes = (size_t)(batch > 1 ? sa * (batch - 1) : 0) * 2 + (size_t)lda * (at ? m : k) * 2;
            bbytes = (size_t)(batch > 1 ? sb * (batch - 1) : 0) * 2 + (size_t)ldb * (btr ? k : n) * 2;
            cbytes = ((size_t)(batch > 1 ? sc * (batch - 1) : 0) + (size_t)ldc * n) * (ctype == CUDA_R_32F ? 4 : 2);
        }
        cublasLtMatmulPreference_t pref; LK(cublasLtMatmulPreferenceCreate(&pref));
        uint64_t w64 = ws_bytes;
        LK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &w64, sizeof w64));
        for (int i = 0; i < 4; i++) { uint32_t a = (uint32_t)al[i]; LK(cublasLtMatmulPreferenceSetAttribute(pref, (cublasLtMatmulPreferenceAttributes_t)(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES + i), &a, sizeof a)); }
        cublasLtMatmulHeuristicResult_t res[16]; int nres = 0;
        cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, max_algos < 16 ? max_algos : 16, res, &nres);
        void *A = dev_fill(abytes, 1), *B = dev_fill(bbytes, 2), *C = dev_fill(cbytes, 3), *bias = dev_fill((size_t)(n + 8) * 2, 4);
        if (epi == CUBLASLT_EPILOGUE_BIAS) LK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        float alpha = 1, betaf = beta ? 1.f : 0.f;
        for (int r = 0; r < nres; r++) {
            int32_t id = 0, tile = 0, stages = 0, splitk = 0, cluster = 0, custom = 0, swz = 0, red = 0, inner = 0; size_t wr;
            cublasLtMatmulAlgoConfigGetAttribute(&res[r].algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &wr);
            cublasLtMatmulAlgoConfigGetAttribute(&res[r].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &wr);
            cublasLtMatmulAlgoConfigGetAttribute(&res[r].algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &wr);
            cublasLtMatmulAlgoConfigGetAttribute(&res[r].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &wr);
            cublasLtMatmulAlgoConfigGetAttribute(&res[r].algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, sizeof cluster, &wr);
            cublasLtMatmulAlgoConfigGetAttribute(&res[r].algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &custom, sizeof custom, &wr);
            cublasLtMatmulAlgoConfigGetAttribute(&res[r].algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swz, sizeof swz, &wr);
            cublasLtMatmulAlgoConfigGetAttribute(&res[r].algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof red, &wr);
            cublasLtMatmulAlgoConfigGetAttribute(&res[r].algo, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, &inner, sizeof inner, &wr);
            char tag[256];
            snprintf(tag, sizeof tag, "shape %d %s m %lld n %lld k %lld epi %d beta %d batch %d | algo %d: id %d tile %d stages %d splitk %d cluster %d custom %d swz %d red %d inner %d ws %zu",
                     shape, bat ? "B" : "L", m, n, k, epi, beta, batch, r, id, tile, stages, splitk, cluster, custom, swz, red, inner, res[r].workspaceSize);
            if (race) {
                printf("== %s\n", tag); fflush(stdout);
                cublasStatus_t s = cublasLtMatmul(lt, desc, &alpha, A, la, B, lb, &betaf, C, lc, C, lc, &res[r].algo, ws, ws_bytes, st);
                CK(cudaStreamSynchronize(st));
                printf("-- done %d\n", (int)s); fflush(stdout);
            } else {
                float t[21]; int bad = 0;
                for (int w = 0; w < 3; w++) bad |= cublasLtMatmul(lt, desc, &alpha, A, la, B, lb, &betaf, C, lc, C, lc, &res[r].algo, ws, ws_bytes, st) != 0;
                for (int it = 0; it < 21 && !bad; it++) {
                    CK(cudaEventRecord(e0, st));
                    for (int q = 0; q < 5; q++) cublasLtMatmul(lt, desc, &alpha, A, la, B, lb, &betaf, C, lc, C, lc, &res[r].algo, ws, ws_bytes, st);
                    CK(cudaEventRecord(e1, st)); CK(cudaEventSynchronize(e1));
                    CK(cudaEventElapsedTime(&t[it], e0, e1)); t[it] *= 1000.f / 5;
                }
                if (bad) printf("%s | FAILS\n", tag);
                else { qsort(t, 21, sizeof *t, cmpf); printf("%s | %.2f us\n", tag, t[10]); }
                fflush(stdout);
            }
        }
        cudaFree(A); cudaFree(B); cudaFree(C); cudaFree(bias);
        cublasLtMatmulPreferenceDestroy(pref); cublasLtMatrixLayoutDestroy(la); cublasLtMatrixLayoutDestroy(lb);
        cublasLtMatrixLayoutDestroy(lc); cublasLtMatmulDescDestroy(desc);
        shape++;
    }
    return 0;
}
