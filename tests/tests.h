/* tests.h - the test harness: one binary (tests/run_tests.c) includes every
   tests/test_*.c after the sdiff implementation. A test is a function
   registered with SDIFF_TEST; CHECK* macros count failures and keep going.
   The runner prints "N passed, M failed" last (CI reads that line). */
#ifndef SDIFF_TESTS_H
#define SDIFF_TESTS_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
typedef struct test_case { const char *name; test_fn fn; } test_case;
#define TEST_MAX 512
static test_case g_tests[TEST_MAX];
static int g_n_tests;
static int g_test_failed;          /* failures inside the running test */
static const char *g_fixtures = "tests/fixtures";

static void test_register(const char *name, test_fn fn) {
    if (g_n_tests < TEST_MAX) { g_tests[g_n_tests].name = name; g_tests[g_n_tests].fn = fn; g_n_tests++; }
}
/* SDIFF_TEST(name) { ... } defines and registers a test (GCC/Clang constructor). */
#define SDIFF_TEST(name)                                                          \
    static void test_##name(void);                                                \
    __attribute__((constructor)) static void test_reg_##name(void) { test_register(#name, test_##name); } \
    static void test_##name(void)

#define CHECK(cond) do { if (!(cond)) { g_test_failed++;                         \
    printf("    FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_MSG(cond, ...) do { if (!(cond)) { g_test_failed++;                \
    printf("    FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); printf(__VA_ARGS__); printf("\n"); } } while (0)

/* Relative error ||a - b|| / ||b|| over n floats; NaN or Inf anywhere -> +inf. */
static inline double test_rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        double d = (double)a[i] - (double)b[i];
        num += d * d; den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
/* Checks rel_err(got, want) <= tol and prints the error either way (-v). */
#define CHECK_REL(got, want, n, tol) do { double e_ = test_rel_err((got), (want), (n));   \
    if (!(e_ <= (tol))) { g_test_failed++;                                          \
        printf("    FAIL %s:%d: rel err %.3g > %.3g (%s vs %s)\n", __FILE__, __LINE__, e_, (double)(tol), #got, #want); } \
    else if (getenv("TEST_VERBOSE")) printf("    rel err %.3g <= %.3g (%s)\n", e_, (double)(tol), #got); } while (0)

/* Reads a whole file (NUL-terminated); NULL if missing. */
static inline char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
    char *buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = 0; if (len) *len = (size_t)n; }
    return buf;
}
/* Deterministic random floats in [-1, 1) (xorshift), for op tests. */
static unsigned long long g_test_rng = 0x9E3779B97F4A7C15ull;
static inline float test_randf(void) {
    g_test_rng ^= g_test_rng << 13; g_test_rng ^= g_test_rng >> 7; g_test_rng ^= g_test_rng << 17;
    return (float)((g_test_rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
/* The runner's main: runs every registered test whose name contains the
   filter (argv[1]) and prints "N passed, M failed" last. */
static int test_main(int argc, char **argv) {
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
#endif
