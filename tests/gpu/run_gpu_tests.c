/* run_gpu_tests.c - the GPU test runner (make gpu-test; run on a machine
   with an NVIDIA GPU): sdiff, its CUDA backend, then every tests/gpu/test_*.c
   (listed by the Makefile in build/gpu_test_all.inc).
   Usage: gpu_tests [name-substring] */
#define SDIFF_IMPLEMENTATION
#include "../../sdiff.h"
#include "../../sdiff_cuda.h"
#include "../tests.h"
#include "gpu_test_all.inc"

int main(int argc, char **argv) { return test_main(argc, argv); }
