/* The test runner: the sdiff implementation, then every test file.
   Usage: run_tests [name-substring]    TEST_VERBOSE=1 prints errors too. */
#include "../sdiff_clip_vocab.h" /* the built-in vocabulary is tested too */
/* small feed-forward chunks, so the tiny models run the chunked path with a
   remainder (their transformers see 128 rows) */
#define SDIFF__FF_CHUNK_ROWS 48
#define SDIFF_IMPLEMENTATION
#include "../sdiff.h"
#include "../sdiff_cuda.h" /* the CUDA backend: NVRTC compile checks, fallback */
#include "tests.h"
/* each test file is listed here (see the Makefile) */
#include "test_all.inc"

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *fx = getenv("SDIFF_FIXTURES");
    if (fx) g_fixtures = fx;
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
