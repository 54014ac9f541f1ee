#!/usr/bin/env bash
# gpu_check.sh - everything the CUDA backend is checked and measured by, in ONE run on a GPU machine
# (device time is scarce: one call, results under $OUT). Run from the repository root with the
# diffusers sources in .ref/src and OpenAI's bpe file in .ref/ (see tools/gen_fixtures.py).
#
#   bash tools/gpu_check.sh [quick]
#
# The GPU machine has no stb headers: programs are built with -DSDIFF_NO_STB there (the CLI then
# generates but cannot write the PNG, which the sanitizer step does not need).
# Steps, each with its own time limit so one hang cannot eat the rest:
#   1. build/gpu_tests: every CUDA op against the CPU backend (tests/gpu/)
#   2. tools/gpu_ref.py: random-weight SD 1.5 (real configs) + diffusers' reference tensors
#   3. build/bench: sdiff's correctness against those references, then its timings
#   4. tools/bench_ref.py: diffusers eager and torch.compile on the same GPU, same run
#   5. compute-sanitizer memcheck and racecheck on a short generation (skipped with "quick")
#   6. the attention kernel alone (tools/attn/bench_attn.cu)
set -u
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT" build
export PYTHONUNBUFFERED=1 SDIFF_CACHE_DIR=${SDIFF_CACHE_DIR:-/tmp/sdiff-cache}
quick=${1:-}
step() { echo; echo "=== $1"; }

step "gpu_tests"
make gpu-test >"$OUT/build.log" 2>&1 || { echo "gpu-test build failed"; tail -20 "$OUT/build.log"; }
timeout 120 ./build/gpu_tests >"$OUT/gpu_tests.log" 2>&1; echo "rc=$?"
grep -E "FAIL|passed|failed|ms per call" "$OUT/gpu_tests.log" | tail -20

step "bench and CLI build (no stb headers on the GPU machine: PNG writing is left out)"
gcc -std=c11 -D_POSIX_C_SOURCE=200809L -DSDIFF_NO_STB -O2 tools/bench.c -o build/bench -lm -lpthread -ldl
gcc -std=c11 -DSDIFF_NO_STB -O2 examples/sdiff.c -o build/sdiff -lm -lpthread -ldl

step "diffusers references"
timeout 150 python3 tools/gpu_ref.py --out /tmp/sd15 >"$OUT/gpu_ref.log" 2>&1; echo "rc=$?"; tail -2 "$OUT/gpu_ref.log"

step "sdiff bench (cold kernel cache, then warm)"
rm -rf "$SDIFF_CACHE_DIR"
timeout 200 ./build/bench /tmp/sd15 cuda 16 >"$OUT/bench_cold.log" 2>&1; echo "rc=$?"
grep -E "check|\|" "$OUT/bench_cold.log"
timeout 60 ./build/bench /tmp/sd15 cuda 1 >"$OUT/bench_warm.log" 2>&1
grep -E "first image" "$OUT/bench_warm.log"

step "diffusers eager + torch.compile (same run)"
if [ "$quick" = quick ]; then extra="--quick --no-compile"; else extra=""; fi
timeout 420 python3 tools/bench_ref.py --model /tmp/sd15 --json "$OUT/bench_ref.json" $extra >"$OUT/bench_ref.log" 2>&1
echo "rc=$?"; grep -E "^\|" "$OUT/bench_ref.log"

if [ "$quick" != quick ] && command -v compute-sanitizer >/dev/null; then
  step "compute-sanitizer (a 4-step generation at 256x256 on the real model)"
  for tool in memcheck racecheck; do
    timeout 300 compute-sanitizer --tool $tool --error-exitcode 9 ./build/sdiff -m /tmp/sd15 -p "a cat" \
      -W 256 -H 256 --steps 4 --backend cuda -o /tmp/san.png >"$OUT/sanitizer_$tool.log" 2>&1
    echo "$tool rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/sanitizer_$tool.log" | tail -1)"
  done
fi

step "attention kernel alone"
python3 tools/attn/gen_attn_header.py >/dev/null && \
  nvcc -O2 -Ibuild -gencode=arch=compute_90a,code=sm_90a tools/attn/bench_attn.cu -o build/bench_attn -lnvrtc -lcuda \
  && timeout 120 ./build/bench_attn >"$OUT/bench_attn.log" 2>&1; tail -25 "$OUT/bench_attn.log"
