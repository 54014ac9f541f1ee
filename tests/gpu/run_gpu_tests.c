/* run_gpu_tests.c - the GPU test runner (make gpu-test; run on a machine
   with an NVIDIA GPU): sdiff, its CUDA backend, then every tests/gpu/test_*.c
   (listed by the Makefile in build/gpu_test_all.inc).
   Usage: gpu_tests [name-substring] */
#define SDIFF_IMPLEMENTATION
#include "../../sdiff.h"
#include "../../sdiff_cuda.h"
#include "../tests.h"
#include "gpu_test_all.inc"

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    const char *filter = argc > 1 ? argv[1] : NULL;
    (void)g_fixtures; (void)test_read_file; /* tests.h's, unused here */
    for (int i = 0; i < g_n_tests; i++) {
        if (filter && !strstr(g_tests[i].name, filter)) continue;
        g_test_failed = 0;
        printf("%s\n", g_tests[i].name);
        fflush(stdout);
        g_tests[i].fn();
        if (g_test_failed) { failed++; printf("  FAILED %s\n", g_tests[i].name); }
        else passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
