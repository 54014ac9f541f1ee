/* The test runner: the sdiff implementation, then every test file.
   Usage: run_tests [name-substring]    TEST_VERBOSE=1 prints errors too. */
#include "../sdiff_clip_vocab.h" /* the built-in vocabulary is tested too */
/* small feed-forward chunks, so the tiny models run the chunked path with a
   remainder (their transformers see 128 rows of 16 to 64 channels: 96 to 24 rows a chunk) */
#define SDIFF__FF_CHUNK_ELEMS (48 * 8 * 32)
/* and small noise chunks: the tiny model's latents are 256 floats, so the stochastic samplers'
   noise goes up three steps at a time, the last chunk partial */
#define SDIFF__NOISE_CHUNK_BYTES ((size_t)3 * 256 * 4)
#define SDIFF_IMPLEMENTATION
#include "../sdiff.h"
#include "../sdiff_cuda.h" /* the CUDA backend: NVRTC compile checks, fallback */
#include "tests.h"
/* each test file is listed here (see the Makefile) */
#include "test_all.inc"

int main(int argc, char **argv) { return test_main(argc, argv); }
