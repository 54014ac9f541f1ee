/* bench_util.h - what the benchmark programs share: a monotonic clock, a
   median, a safetensors tensor as floats, and the relative error. Include it
   after sdiff.h's implementation. */
#ifndef SDIFF_BENCH_UTIL_H
#define SDIFF_BENCH_UTIL_H
#include <time.h>

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
/* Sorts v in place. */
static inline double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n ? v[n / 2] : 0;
}
/* The tensor `name` of st as floats (malloc'd), its shape and numel; NULL if
   it is missing or not a float dtype. */
static inline float *st_get_f32(const sdiff__safetensors *st, const char *name, int64_t *shape, int64_t *numel) {
    const sdiff__st_tensor *t = sdiff__st_find(st, name);
    if (!t || t->dtype < 0) return NULL;
    int64_t n = 1;
    for (int i = 0; i < t->nd; i++) { n *= t->shape[i]; if (shape) shape[i] = t->shape[i]; }
    float *v = (float *)malloc((size_t)n * sizeof(float));
    sdiff__to_f32(v, t->data, (sdiff__dtype)t->dtype, (size_t)n);
    if (numel) *numel = n;
    return v;
}
/* ||a - b|| / ||b||; any non-finite value gives infinity. */
static inline double rel_err(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}
#endif
